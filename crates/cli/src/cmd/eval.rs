//! `metal-marlin eval perplexity|logits`.

use anyhow::{Context, Result};
use marlin_engine::eval;
use marlin_models::chat::ChatMessage;
use marlin_models::forward::LogitsRequest;

use crate::args::{EvalCommand, LogitsArgs, PerplexityArgs};
use crate::common::{encode_prompt, load_model, progress_bar};

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Perplexity(a) => perplexity(a),
        EvalCommand::Logits(a) => logits(a),
    }
}

fn perplexity(a: PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let (model, device) = load_model(&a.model)?;
    let tokens = model.tokenizer.encode(&text, false)?;
    let bos = model
        .tokenizer
        .add_bos()
        .then(|| model.tokenizer.bos_id())
        .flatten();
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
