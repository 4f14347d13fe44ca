//! Sampled decoding on the GPU (`GpuModel::forward_sample`, and the engine's decode loop
//! when penalties are off): greedy settings give the argmax ids, draws are reproducible per
//! seed, and a sequence's rows step the counter. Tiny llama fixture; lavapipe in CI.

mod gpu_common;

use std::sync::Arc;

use gpu_common::gpu_ctx;
use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_models::gpu_forward::GpuSampling;
use marlin_models::{Device, GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};

fn tiny() -> Arc<Model> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/llama");
    Arc::new(Model::load(&dir, &mut |_, _| {}).expect("load"))
}

fn warm(temperature: f32, seed: u64) -> GpuSampling {
    GpuSampling {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed,
        counter: 0,
    }
}

#[test]
fn forward_sample_greedy_equals_argmax_and_draws_repeat() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = tiny();
    let gpu = GpuModel::new(ctx, &model).expect("upload");
    let kv = GpuKvCache::new(&gpu, 8).expect("kv");
    let (a, b) = ([1u32, 5, 9, 3], [2u32, 8, 4]);
    let seqs = [
        SeqInput {
            tokens: &a,
            start_pos: 0,
            block_table: &[0],
            logits: LogitsRequest::All,
        },
        SeqInput {
            tokens: &b,
            start_pos: 0,
            block_table: &[1],
            logits: LogitsRequest::Last,
        },
    ];
    let want = gpu.forward_argmax(&seqs, &kv).expect("argmax");
    assert_eq!(want.len(), a.len() + 1);
    let greedy = [warm(0.0, 1), warm(2.0, 1)].map(|s| GpuSampling { top_k: 1, ..s });
    assert_eq!(
        gpu.forward_sample(&seqs, &kv, &greedy).expect("greedy"),
        want
    );
    // Hot sampling: the same seeds repeat, other seeds (or counters) draw differently.
    let hot = [warm(5.0, 11), warm(5.0, 12)];
    let first = gpu.forward_sample(&seqs, &kv, &hot).expect("hot");
    assert_eq!(gpu.forward_sample(&seqs, &kv, &hot).expect("again"), first);
    let vocab = model.config.vocab as u32;
    assert!(first.iter().all(|&t| t < vocab));
    let mut differs = false;
    for seed in 100..110 {
        let other = [warm(5.0, seed), warm(5.0, seed + 1)];
        differs |= gpu.forward_sample(&seqs, &kv, &other).expect("other") != first;
    }
    assert!(differs, "ten other seeds all drew {first:?}");
    assert!(
        gpu.forward_sample(&seqs, &kv, &hot[..1]).is_err(),
        "one setting per sequence"
    );
}

#[test]
fn engine_samples_on_the_gpu_reproducibly() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = tiny();
    let gpu = Arc::new(GpuModel::new(ctx, &model).expect("upload"));
    let mut engine = Engine::new(model.clone(), 64)
        .with_device(Device::Gpu(gpu.clone()))
        .expect("gpu kv");
    let params = SamplingParams {
        temperature: 1.5,
        top_k: 40,
        top_p: 0.95,
        seed: Some(7),
        max_tokens: 12,
        ignore_eos: true,
        ..Default::default()
    };
    let prompt = [1u32, 20, 30, 40];
    let a = engine.generate(&prompt, &params, &mut |_| {}).expect("a");
    let b = engine.generate(&prompt, &params, &mut |_| {}).expect("b");
    assert_eq!(a.token_ids.len(), 12);
    assert_eq!(a.token_ids, b.token_ids, "same seed, same tokens");
    let mut other = false;
    for seed in 8..12 {
        let p = SamplingParams {
            seed: Some(seed),
            ..params.clone()
        };
        other |= engine
            .generate(&prompt, &p, &mut |_| {})
            .expect("c")
            .token_ids
            != a.token_ids;
    }
    assert!(other, "other seeds drew the same 12 tokens");
    // Penalties keep the host sampler (logits read back) and still generate.
    let pen = SamplingParams {
        repetition_penalty: 1.3,
        ..params.clone()
    };
    let c = engine
        .generate(&prompt, &pen, &mut |_| {})
        .expect("penalties");
    assert_eq!(c.token_ids.len(), 12);
}
