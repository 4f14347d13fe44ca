//! Shared helpers of the quantizer tests: fixture paths, whole-prompt logits and the
//! KL divergence / NMSE of a quantized model's logits against its base.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use marlin_models::kv_cache::KvCache;
use marlin_models::{LogitsRequest, Model, SeqInput};

pub fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

pub fn english() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/text/english.txt"),
    )
    .unwrap()
}

pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("marlin-quant-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn load(p: &Path) -> Model {
    Model::load(p, &mut |_, _| {}).unwrap()
}

/// Logits of every position of `ids` from one whole-prompt forward (flattened).
pub fn logits(model: &Model, ids: &[u32]) -> Vec<f32> {
    let mut kv = KvCache::for_tokens(&model.config, ids.len());
    let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
    let seq = SeqInput {
        tokens: ids,
        start_pos: 0,
        block_table: &table,
        logits: LogitsRequest::All,
    };
    model.forward(&[seq], &mut kv).unwrap().data
}

fn log_softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = row.iter().map(|&x| f64::from(x - m).exp()).sum();
    row.iter().map(|&x| f64::from(x - m) - z.ln()).collect()
}

/// Mean KL(base ‖ q) per position over logits rows of `vocab`.
pub fn mean_kl(base: &[f32], q: &[f32], vocab: usize) -> f64 {
    let rows = base.len() / vocab;
    let mut kl = 0f64;
    for (b, g) in base.chunks_exact(vocab).zip(q.chunks_exact(vocab)) {
        let (lb, lq) = (log_softmax(b), log_softmax(g));
        kl += lb
            .iter()
            .zip(&lq)
            .map(|(p, q)| p.exp() * (p - q))
            .sum::<f64>();
    }
    kl / rows as f64
}

/// ‖q − base‖² / ‖base‖².
pub fn nmse(base: &[f32], q: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (b, g) in base.iter().zip(q) {
        num += f64::from(g - b).powi(2);
        den += f64::from(*b).powi(2);
    }
    num / den.max(1e-30)
}

/// Held-out evaluation ids (after the calibration part of the text).
pub fn eval_ids(model: &Model, text: &str) -> Vec<u32> {
    let mut ids = model.tokenizer.encode(&text[8000..12000], false).unwrap();
    ids.truncate(128);
    ids
}
