//! Split-K decode attention inside the GPU forward pass: with the split threshold lowered,
//! a decode step over a 300-token context (tiny llama; tiny gemma3 with its sliding-window
//! layers) gives the single-pass logits and the CPU's, with one more dispatch (the combine)
//! per split layer; the prompt-attention kernels (`attn_prefill`, and `attn_flash` where
//! the device has cooperative matrices) give the per-query kernel's prompt logits over 150
//! tokens (three 64-query blocks, gemma3's windows). Lavapipe in CI (no `attn_flash`).

mod gpu_common;

use std::sync::Arc;

use gpu_common::gpu_ctx;
use marlin_engine::Engine;
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};

fn tiny(arch: &str) -> Arc<Model> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(arch);
    Arc::new(Model::load(&dir, &mut |_, _| {}).expect("load"))
}

/// Prefill all but the last token, then decode the last: its logits and the dispatches.
fn decode_last(gpu: &GpuModel, prompt: &[u32]) -> (Vec<f32>, u32) {
    let kv = GpuKvCache::new(gpu, 24).expect("kv");
    let table: Vec<u32> = (0..24).collect();
    let n = prompt.len();
    let pre = SeqInput {
        tokens: &prompt[..n - 1],
        start_pos: 0,
        block_table: &table,
        logits: LogitsRequest::None,
    };
    gpu.forward(&[pre], &kv).expect("prefill");
    let step = SeqInput {
        tokens: &prompt[n - 1..],
        start_pos: n - 1,
        block_table: &table,
        logits: LogitsRequest::Last,
    };
    let l = gpu.forward(&[step], &kv).expect("decode");
    (l.data, gpu.dispatch_count())
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn split_decode_attention_matches_single_pass_and_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    for arch in ["llama", "gemma3"] {
        let model = tiny(arch);
        let vocab = model.config.vocab as u32;
        let prompt: Vec<u32> = (0..300u32).map(|i| (i * 37 + 11) % vocab).collect();
        let single = GpuModel::new(ctx.clone(), &model)
            .expect("upload")
            .with_attn_split_min_keys(usize::MAX);
        let split = GpuModel::new(ctx.clone(), &model)
            .expect("upload")
            .with_attn_split_min_keys(64);
        let (a, da) = decode_last(&single, &prompt);
        let (b, db) = decode_last(&split, &prompt);
        // Global layers split (300 keys > 64); windowed ones (gemma3: 8 keys) do not.
        let c = &model.config;
        let global = c.local_layers.iter().filter(|&&l| !l).count() as u32;
        let global = if c.sliding_window.is_some() {
            global
        } else {
            c.n_layers as u32
        };
        assert!(global > 0, "{arch}");
        assert_eq!(db, da + global, "{arch}: one combine per split layer");
        let d = max_abs(&a, &b);
        assert!(d < 1e-4, "{arch}: split vs single pass max |Δ| {d}");
        let mut cpu = Engine::new(model.clone(), 320);
        let want = cpu
            .prompt_logits(&prompt, LogitsRequest::Last)
            .expect("cpu");
        let scale = want.data.iter().fold(1f32, |m, v| m.max(v.abs()));
        let d = max_abs(&b, &want.data);
        assert!(d <= 1e-3 * scale, "{arch}: GPU split vs CPU max |Δ| {d}");
    }
}

/// Which prompt-attention kernel a step runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Prompt {
    PerQuery,
    Prefill,
    Flash,
}

#[test]
fn prompt_attention_kernels_match_the_per_query_kernel() {
    let Some(ctx) = gpu_ctx() else { return };
    let coop = ctx.summary.coop_gemm();
    if !coop {
        eprintln!("no cooperative matrices: attn_flash is not compared here");
    }
    for arch in ["llama", "gemma3", "qwen3"] {
        let model = tiny(arch);
        let vocab = model.config.vocab as u32;
        let prompt: Vec<u32> = (0..150u32).map(|i| (i * 29 + 5) % vocab).collect();
        let logits = |kind: Prompt| {
            let gpu = GpuModel::new(ctx.clone(), &model)
                .expect("upload")
                .with_prefill_attention(kind == Prompt::Prefill)
                .with_flash_attention(kind == Prompt::Flash);
            let kv = GpuKvCache::new(&gpu, 16).expect("kv");
            let table: Vec<u32> = (0..16).collect();
            let seq = SeqInput {
                tokens: &prompt,
                start_pos: 0,
                block_table: &table,
                logits: LogitsRequest::All,
            };
            gpu.forward(&[seq], &kv).expect("forward").data
        };
        let plain = logits(Prompt::PerQuery);
        let scale = plain.iter().fold(1f32, |m, v| m.max(v.abs()));
        // attn_prefill: summation order only (f32), the tiny models' GPU-vs-transformers
        // tolerance; attn_flash rounds Q and P to f16 on the tensor cores.
        for (kind, tol) in [(Prompt::Prefill, 1e-3), (Prompt::Flash, 1e-2)] {
            if kind == Prompt::Flash && !coop {
                continue;
            }
            let d = max_abs(&logits(kind), &plain);
            assert!(
                d <= tol * scale,
                "{arch}: {kind:?} vs per-query prompt attention max |Δ| {d} (scale {scale})"
            );
        }
    }
}
