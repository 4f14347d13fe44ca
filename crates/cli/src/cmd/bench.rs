//! `metal-marlin bench`: prefill and decode speed as one JSON object.
//!
//! Like llama-bench: prefill runs `--prompt-len` tokens through an empty cache (pp), decode
//! generates `--gen-len` tokens greedily from a one-token prompt (tg), each repeated after
//! a warm-up; token ids are drawn from the vocabulary with a fixed seed.

use std::time::Instant;

use anyhow::{bail, Result};
use marlin_engine::sampler::SamplingParams;
use marlin_models::forward::LogitsRequest;

use crate::args::BenchArgs;
use crate::common::{load_model, peak_rss_bytes};

pub fn run(a: BenchArgs) -> Result<()> {
    if a.prompt_len == 0 || a.gen_len == 0 || a.repeats == 0 {
        bail!("--prompt-len, --gen-len and --repeats must be at least 1");
    }
    let (model, device) = load_model(&a.model)?;
    let vocab = model.config.vocab as u64;
    // A fixed linear-congruential draw keeps runs comparable without a heavier RNG.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let prompt: Vec<u32> = (0..a.prompt_len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % vocab) as u32
        })
        .collect();
    let threads = rayon::current_num_threads();
    let mut engine = device.engine(model.clone(), a.prompt_len.max(a.gen_len + 1))?;
    let params = SamplingParams {
        max_tokens: a.gen_len,
        ignore_eos: true,
        ..SamplingParams::default()
    };
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 0..=a.repeats {
        let t = Instant::now();
        engine.prompt_logits(&prompt, LogitsRequest::Last)?;
        let pp_rate = a.prompt_len as f64 / t.elapsed().as_secs_f64();
        let out = engine.generate(&prompt[..1], &params, &mut |_| {})?;
        if rep > 0 {
            pp.push(pp_rate);
            tg.push(out.decode_tok_s());
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // The last step of `generate` was a decode step: its dispatch count is per token.
    let dispatches = engine.gpu().map(|g| g.dispatch_count());
    let json = serde_json::json!({
        "model": model.name,
        "device": device.name(),
        "threads": threads,
        "prompt_len": a.prompt_len,
        "git_sha": env!("MARLIN_GIT_SHA"),
        "gen_len": a.gen_len,
        "repeats": a.repeats,
        "prefill_tok_s": mean(&pp),
        "decode_tok_s": mean(&tg),
        "prefill_tok_s_runs": pp,
        "decode_tok_s_runs": tg,
        "weight_bytes": model.weight_bytes(),
        "dispatches_per_token": dispatches,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    println!("{json}");
    Ok(())
}
