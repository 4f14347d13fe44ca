//! `metal-marlin eval perplexity|logits|kl`.

use anyhow::{Context, Result};
use marlin_engine::eval;
use marlin_models::chat::ChatMessage;
use marlin_models::forward::LogitsRequest;
use marlin_models::Model;

use crate::args::{EvalCommand, KlArgs, LogitsArgs, PerplexityArgs};
use crate::common::{encode_prompt, load_model, progress_bar};

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Perplexity(a) => perplexity(a),
        EvalCommand::Logits(a) => logits(a),
        EvalCommand::Kl(a) => kl(a),
    }
}

/// The tokens of the text file `path` with `model`'s tokenizer, and the BOS id to start
/// each window with (when the model adds one).
fn text_tokens(path: &std::path::Path, model: &Model) -> Result<(Vec<u32>, Option<u32>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tokens = model.tokenizer.encode(&text, false)?;
    let bos = model
        .tokenizer
        .add_bos()
        .then(|| model.tokenizer.bos_id())
        .flatten();
    Ok((tokens, bos))
}

fn kl(a: KlArgs) -> Result<()> {
    let (model, device) = load_model(&a.model)?;
    let mut ref_args = a.model.clone();
    ref_args.model = a.reference.clone();
    let (base, base_device) = load_model(&ref_args)?;
    let (tokens, bos) = text_tokens(&a.file, &base)?;
    let mut q = device.engine(model, a.ctx)?;
    let mut b = base_device.engine(base, a.ctx)?;
    let pb = progress_bar(1, "windows");
    let r = marlin_engine::eval_kl::kl_divergence(
        &mut q,
        &mut b,
        &tokens,
        a.ctx,
        bos,
        a.score_all,
        &mut |d, t| {
            pb.set_length(t as u64);
            pb.set_position(d as u64);
        },
    )?;
    pb.finish_and_clear();
    let json = serde_json::json!({
        "mean_kl": r.mean_kl,
        "p99_kl": r.p99_kl,
        "top1_agreement": r.top1_agreement,
        "perplexity": r.perplexity,
        "reference_perplexity": r.reference_perplexity,
        "tokens": r.tokens,
        "windows": r.windows,
        "ctx": a.ctx,
        "model": a.model.model,
        "reference": a.reference,
        "device": device.name(),
    });
    if a.json {
        println!("{json}");
    } else {
        println!(
            "mean KL {:.5} nats, p99 {:.4}, top-1 agreement {:.2}% over {} tokens",
            r.mean_kl,
            r.p99_kl,
            100.0 * r.top1_agreement,
            r.tokens
        );
    }
    Ok(())
}

fn perplexity(a: PerplexityArgs) -> Result<()> {
    let (model, device) = load_model(&a.model)?;
    let (tokens, bos) = text_tokens(&a.file, &model)?;
    let mut engine = device.engine(model, a.ctx)?;
    let pb = progress_bar(1, "windows");
    let r = eval::perplexity(
        &mut engine,
        &tokens,
        a.ctx,
        bos,
        a.score_all,
        &mut |d, t| {
            pb.set_length(t as u64);
            pb.set_position(d as u64);
        },
    )?;
    pb.finish_and_clear();
    let json = serde_json::json!({
        "perplexity": r.perplexity,
        "nll": r.nll,
        "tokens": r.tokens,
        "windows": r.windows,
        "ctx": a.ctx,
        "score_all": a.score_all,
        "device": device.name(),
    });
    println!("{json}");
    Ok(())
}

fn logits(a: LogitsArgs) -> Result<()> {
    let (model, device) = load_model(&a.model)?;
    let ids = encode_prompt(&model, &[ChatMessage::new("user", &a.prompt)], a.raw)?;
    let mut engine = device.engine(model, ids.len())?;
    let logits = engine.prompt_logits(&ids, LogitsRequest::All)?;
    let top: Vec<Vec<(u32, f32)>> = (0..logits.rows())
        .map(|r| top_k(logits.row(r), a.top_k))
        .collect();
    let json = serde_json::json!({ "token_ids": ids, "top": top });
    println!("{json}");
    Ok(())
}

/// The `k` largest logits as (id, value), highest first.
fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(idx.len());
    let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]);
    if k < idx.len() && k > 0 {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, row[i as usize])).collect()
}
