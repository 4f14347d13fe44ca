//! Mixture-of-experts models on the GPU (lavapipe in CI; `MARLIN_SKIP_GPU=1` skips when no
//! adapter): the tiny Qwen3-MoE fixture (transformers golden, first layer dense) through the
//! GPU forward, prompt logits and greedy decode against the golden and against the CPU; the
//! tiny GLM-4.7-Flash (`glm4_moe_lite`: MLA + MoE) through the engine the same way.

mod gpu_common;

use std::sync::Arc;

use gpu_common::{f16_gemm, gpu_ctx, json_ids, json_logits};
use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_models::{Device, GpuModel, LogitsRequest, Model};

/// As `TINY_REL_TOL` in gpu_models.rs: max |Δ| ≤ 1e-3 × max(1, max |golden|), 4× that
/// where prompt GEMMs round their operands to f16 (tensor cores; an H200 measured up to
/// 1.7e-3 on the MLA fixtures).
const REL_TOL: f32 = 1e-3;

fn tiny(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn qwen3_moe_on_gpu_matches_transformers_and_cpu() {
    moe_on_gpu_matches_transformers_and_cpu("qwen3_moe");
}

#[test]
fn glm4_moe_lite_on_gpu_matches_transformers_and_cpu() {
    moe_on_gpu_matches_transformers_and_cpu("glm4_moe_lite");
}

/// The engine on the GPU against the fixture's golden logits and greedy tokens, and
/// against the same engine on the CPU.
fn moe_on_gpu_matches_transformers_and_cpu(name: &str) {
    let Some(ctx) = gpu_ctx() else { return };
    let dir = tiny(name);
    let text = std::fs::read_to_string(dir.join("golden.json")).expect("golden");
    let golden: serde_json::Value = serde_json::from_str(&text).expect("json");
    let model = Arc::new(Model::load(&dir, &mut |_, _| {}).expect("load"));
    assert!(model.config.moe.is_some(), "fixture is a MoE model");
    let gpu = Arc::new(GpuModel::new(ctx.clone(), &model).expect("upload"));
    let mut engine = Engine::new(model.clone(), 64)
        .with_device(Device::Gpu(gpu.clone()))
        .expect("gpu kv");
    let mut cpu = Engine::new(model.clone(), 64);
    let prompts = golden["prompts"].as_array().expect("prompts");
    for p in prompts {
        let ids = json_ids(&p["ids"]);
        let want = json_logits(p);
        let got = engine
            .prompt_logits(&ids, LogitsRequest::All)
            .expect("gpu logits");
        let on_cpu = cpu.prompt_logits(&ids, LogitsRequest::All).expect("cpu");
        let max_abs = want.iter().fold(0f32, |m, &x| m.max(x.abs()));
        let tol = REL_TOL * max_abs.max(1.0) * if f16_gemm(&ctx) { 4.0 } else { 1.0 };
        let (worst, vs_cpu) = (
            max_diff(&got.data, &want),
            max_diff(&got.data, &on_cpu.data),
        );
        eprintln!(
            "{name}/{}: max |Δ| {worst}, vs CPU {vs_cpu} (tol {tol})",
            p["name"]
        );
        assert!(worst <= tol, "{}: max |Δ| {worst} > {tol}", p["name"]);
        assert!(vs_cpu <= tol, "{}: GPU vs CPU {vs_cpu} > {tol}", p["name"]);
    }
    // Greedy decode: one token per step through the paged GPU cache (GEMV path).
    let prompt =
        json_ids(&prompts[golden["greedy"]["prompt"].as_u64().expect("i") as usize]["ids"]);
    let tokens = json_ids(&golden["greedy"]["tokens"]);
    let params = SamplingParams {
        max_tokens: tokens.len(),
        ignore_eos: true,
        ..Default::default()
    };
    let out = engine.generate(&prompt, &params, &mut |_| {}).expect("gen");
    assert_eq!(out.token_ids, tokens, "greedy tokens on the GPU");
    let cpu_out = cpu.generate(&prompt, &params, &mut |_| {}).expect("gen");
    assert_eq!(out.token_ids, cpu_out.token_ids, "GPU vs CPU greedy");
    // A fixed number of dispatches per MoE layer: the MoE step is no longer per expert.
    assert!(gpu.matmul_dispatches() > 0);
}
