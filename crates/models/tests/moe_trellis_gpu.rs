//! Routed experts whose matrices carry their own rotations on the GPU (lavapipe in CI;
//! `MARLIN_SKIP_GPU=1` skips when no adapter): `synthetic:glm47-tiny:trellis3` (every
//! expert matrix with its own suh/svh: `moe_hadamard_scale` around the expert GEMVs; long
//! prompts group the slots by matrix) and a
//! Q8_0 model whose experts are stored block-Hadamard rotated, against the CPU on the same
//! weights: prompt logits, token-by-token decode and greedy tokens.

use std::sync::Arc;

use marlin_core::formats::quantize_tensor;
use marlin_core::{hadamard, QTensor, QuantFormat};
use marlin_models::blocks::FfnWeights;
use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::kv_cache::KvCache;
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};

fn gpu_ctx() -> Option<Arc<GpuContext>> {
    match GpuContext::new(DeviceSelector::Gpu) {
        Ok(Some(c)) => Some(Arc::new(c)),
        _ if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => None,
        other => panic!("no wgpu adapter: {:?}", other.err()),
    }
}

fn nmse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    num / den.max(1e-30)
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// All logits of `prompt` in one step, then `gen` greedy tokens one by one: (the prompt's
/// logits, every decode step's logits, the generated tokens), on the GPU or the CPU.
fn run(model: &Model, gpu: Option<&GpuModel>, prompt: &[u32], gen: usize) -> Run {
    let len = prompt.len() + gen;
    let mut kv = KvCache::for_tokens(&model.config, len);
    let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
    let gkv = gpu.map(|g| GpuKvCache::new(g, kv.num_blocks()).unwrap());
    let mut step = |tokens: &[u32], start_pos: usize, logits| {
        let seq = SeqInput {
            tokens,
            start_pos,
            block_table: &table,
            logits,
        };
        match (gpu, &gkv) {
            (Some(g), Some(gkv)) => g.forward(&[seq], gkv).unwrap().data,
            _ => model.forward(&[seq], &mut kv).unwrap().data,
        }
    };
    let prompt_logits = step(prompt, 0, LogitsRequest::All);
    let v = model.config.vocab;
    let mut next = argmax(&prompt_logits[prompt_logits.len() - v..]);
    let (mut tokens, mut decode) = (vec![next], Vec::new());
    for i in 0..gen - 1 {
        let l = step(&[next], prompt.len() + i, LogitsRequest::Last);
        next = argmax(&l);
        tokens.push(next);
        decode.extend(l);
    }
    Run {
        prompt: prompt_logits,
        decode,
        tokens,
    }
}

struct Run {
    prompt: Vec<f32>,
    decode: Vec<f32>,
    tokens: Vec<u32>,
}

/// GPU against CPU on `model`: prompt (`len` tokens) and decode NMSE below `tol`, equal
/// greedy tokens.
fn check(what: &str, ctx: Arc<GpuContext>, model: &Model, tol: f64, len: u32) {
    let gpu = GpuModel::new(ctx, model).unwrap();
    let prompt: Vec<u32> = (0..len).map(|i| (i * 37 + 11) % 1000).collect();
    let want = run(model, None, &prompt, 5);
    let got = run(model, Some(&gpu), &prompt, 5);
    let (ep, ed) = (
        nmse(&got.prompt, &want.prompt),
        nmse(&got.decode, &want.decode),
    );
    eprintln!("{what}: GPU vs CPU prompt nmse {ep:e}, decode {ed:e}");
    eprintln!("{what}: tokens GPU {:?} CPU {:?}", got.tokens, want.tokens);
    assert!(
        ep < tol && ed < tol,
        "{what}: nmse prompt {ep:e} decode {ed:e}"
    );
    assert_eq!(got.tokens, want.tokens, "{what}: greedy tokens");
}

#[test]
fn trellis3_glm_experts_on_gpu_match_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = Model::load_spec("synthetic:glm47-tiny:trellis3", &mut |_, _| {}).unwrap();
    let FfnWeights::Moe(m) = &model.weights.blocks[1].ffn else {
        panic!("layer 1 is not MoE");
    };
    assert!(m.experts[0].gate.format.is_trellis());
    check("glm47-tiny trellis3", ctx.clone(), &model, 1e-3, 9);
    // 24 tokens: the prompt step groups the experts' slots by matrix (from 16 tokens).
    check("glm47-tiny trellis3, grouped", ctx, &model, 1e-3, 24);
}

/// `W` stored as `W·H` (rows rotated) in Q8_0 and marked rotated with `block`.
fn rotated_q8(t: &QTensor, block: usize) -> QTensor {
    let mut v = t.to_f32().unwrap();
    hadamard::rotate(&mut v, block).unwrap();
    quantize_tensor(QuantFormat::Q8_0, &t.shape, &v)
        .unwrap()
        .with_hadamard(block)
        .unwrap()
}

#[test]
fn rotated_q8_0_glm_experts_on_gpu_match_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let mut model = Model::load_spec("synthetic:glm47-tiny:q8_0", &mut |_, _| {}).unwrap();
    let mut n = 0;
    for b in &mut model.weights.blocks {
        if let FfnWeights::Moe(m) = &mut b.ffn {
            for e in &mut m.experts {
                e.gate = rotated_q8(&e.gate, 128);
                e.up = rotated_q8(&e.up, 128);
                e.down = rotated_q8(&e.down, 64);
                n += 1;
            }
        }
    }
    assert!(n > 0, "no experts rotated");
    check("glm47-tiny q8_0, rotated experts", ctx, &model, 1e-3, 9);
}

/// Trellis experts add a fixed number of dispatches per MoE layer (a `moe_hadamard_scale`
/// on each side of both expert GEMVs): a decode step's count does not grow with `top_k`.
#[test]
fn trellis_moe_dispatches_do_not_grow_with_top_k() {
    let Some(ctx) = gpu_ctx() else { return };
    let mut model = Model::load_spec("synthetic:glm47-tiny:trellis3", &mut |_, _| {}).unwrap();
    let mut counts = Vec::new();
    for top_k in [1, 2, 4] {
        model.config.moe.as_mut().unwrap().top_k = top_k;
        let gpu = GpuModel::new(ctx.clone(), &model).unwrap();
        let got = run(&model, Some(&gpu), &[5, 17, 42], 2);
        assert!(got.decode.iter().all(|v| v.is_finite()));
        counts.push(gpu.dispatch_count());
    }
    eprintln!("trellis3 decode step dispatches for top_k 1, 2, 4: {counts:?}");
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
}
