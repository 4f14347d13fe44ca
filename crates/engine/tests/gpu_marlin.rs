//! Random-weight SmolLM2-shaped models in metal-marlin formats (rows of 576 = two 256
//! blocks and a 64-element tail) on the GPU against the CPU: prompt logits and greedy
//! tokens, through every GPU matmul and embedding kernel of those formats.

mod gpu_common;

use gpu_common::{cpu_gpu_pair, gpu_ctx, CpuGpuPair};
use marlin_engine::sampler::SamplingParams;
use marlin_models::gpu_forward::marlin_gpu::GpuContext;
use std::sync::Arc;

#[test]
fn marlin_format_models_match_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    // Two of them (every format's kernels are in crates/gpu's parity tests; each model here
    // costs ~30 s on 2 cores). Measured on lavapipe, logits NMSE: fp4_g128 5e-11, nvfp4 2e-11,
    // fp8 1e-10, int4z_g128 1e-10, int3_g64 9e-11, int2z_g32 2e-11.
    for format in ["fp4_g128", "int3_g64"] {
        gpu_matches_cpu(&ctx, &format!("synthetic:smollm2-135m:{format}"));
    }
}

/// A random-weight SmolLM2-shaped model in trellis3 (tiles decoded on the fly on both
/// devices, hadamard_scale around every GPU matmul; token embeddings in Q8_0): the GPU's
/// prompt logits and greedy tokens match the CPU's (measured logits NMSE 5e-6).
#[test]
fn trellis_model_matches_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    gpu_matches_cpu(&ctx, "synthetic:smollm2-135m:trellis3");
}

/// Prompt logits within NMSE 1e-3 and the same 4 greedy tokens on the GPU as on the CPU.
fn gpu_matches_cpu(ctx: &Arc<GpuContext>, spec: &str) {
    let prompt = [1u32, 400, 9000, 17, 3000, 42];
    let CpuGpuPair {
        mut cpu,
        mut gpu,
        nmse,
    } = cpu_gpu_pair(ctx, spec, &prompt);
    eprintln!("{spec}: logits nmse GPU vs CPU {nmse:e}");
    assert!(nmse < 1e-3, "{spec}: nmse {nmse:e}");
    let params = SamplingParams {
        max_tokens: 4,
        ignore_eos: true,
        ..Default::default()
    };
    let a = cpu
        .generate(&prompt, &params, &mut |_| {})
        .expect("cpu gen");
    let b = gpu
        .generate(&prompt, &params, &mut |_| {})
        .expect("gpu gen");
    assert_eq!(a.token_ids, b.token_ids, "{spec}: greedy tokens");
}
