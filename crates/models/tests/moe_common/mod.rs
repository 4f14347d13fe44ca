//! Shared helpers of the MoE / MLA golden tests: fixture paths, golden files, whole-prompt
//! forwards and the logit comparison.
#![allow(dead_code)]

pub mod gguf;

use std::path::{Path, PathBuf};

use marlin_models::gpu_forward::marlin_gpu::{GpuContext, Op};
use marlin_models::kv_cache::KvCache;
use marlin_models::{LogitsRequest, Model, SeqInput};
use serde_json::Value;

/// Relative tolerance: max |Δ| ≤ REL_TOL × max(1, max |golden logit|) per prompt.
pub const REL_TOL: f32 = 1e-3;

pub struct Prompt {
    pub name: String,
    pub ids: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
}

pub struct Golden {
    pub prompts: Vec<Prompt>,
    pub greedy_prompt: usize,
    pub greedy_tokens: Vec<u32>,
}

pub fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn golden(name: &str) -> Golden {
    let text = std::fs::read_to_string(tiny(name).join("golden.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let prompts = v["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Prompt {
            name: p["name"].as_str().unwrap().to_owned(),
            ids: ids(&p["ids"]),
            logits: p["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect()
                })
                .collect(),
        })
        .collect();
    Golden {
        prompts,
        greedy_prompt: v["greedy"]["prompt"].as_u64().unwrap() as usize,
        greedy_tokens: ids(&v["greedy"]["tokens"]),
    }
}

pub fn load(path: &Path) -> Model {
    Model::load(path, &mut |_, _| {}).unwrap()
}

/// Logits of every position of `ids` from one whole-prompt forward.
pub fn forward_all(model: &Model, ids: &[u32]) -> Vec<Vec<f32>> {
    let mut kv = KvCache::for_tokens(&model.config, ids.len());
    let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
    let seq = SeqInput {
        tokens: ids,
        start_pos: 0,
        block_table: &table,
        logits: LogitsRequest::All,
    };
    let l = model.forward(&[seq], &mut kv).unwrap();
    (0..l.rows()).map(|i| l.row(i).to_vec()).collect()
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

/// Every row within tolerance of the golden one, and the same top-1.
pub fn check_logits(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
    check_logits_tol(what, got, want, REL_TOL);
}

/// Whether `ctx` runs prompt GEMMs on f16 tensor cores (hardware with cooperative
/// matrices), which rounds their operands to f16.
pub fn f16_gemm(ctx: &GpuContext) -> bool {
    ctx.default_variant(Op::Gemm).is_coop()
}

/// The relative logits tolerance on `ctx`: [`REL_TOL`], or 4× where prompt GEMMs round
/// their operands to f16 (an H200 measured up to 1.7e-3).
pub fn gpu_rel_tol(ctx: &GpuContext) -> f32 {
    if f16_gemm(ctx) {
        4.0 * REL_TOL
    } else {
        REL_TOL
    }
}

/// [`check_logits`] with relative tolerance `rel_tol`.
pub fn check_logits_tol(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], rel_tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    let scale = want.iter().flatten().fold(1f32, |m, x| m.max(x.abs()));
    let mut worst = 0f32;
    for (pos, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: vocab");
        for (a, b) in g.iter().zip(w) {
            let d = (a - b).abs();
            assert!(!d.is_nan(), "{what}: NaN at {pos}");
            worst = worst.max(d);
        }
        assert_eq!(argmax(g), argmax(w), "{what}: top-1 differs at {pos}");
    }
    assert!(
        worst <= rel_tol * scale,
        "{what}: max |Δ| {worst} > {}",
        rel_tol * scale
    );
}
