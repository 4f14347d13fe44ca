//! The runner's KV dtype on SmolLM2-135M: INT8 / FP8 E4M3 caches run on the CPU and on the
//! GPU (lavapipe in CI). Over a prompt and a few decode steps, each quantized run's logits
//! stay close to the F16 cache's on the same device, and the GPU's quantized run matches
//! the CPU's quantized run about as closely as the F16 runs of the two devices match (the
//! CPU quantizes activations to 8 bits, the GPU does not). Measured on lavapipe, max / mean
//! |Δlogit| over the 4 rows: quantized vs F16 on the same device ≤ 1.02 / 0.27; GPU vs CPU
//! F16 0.75 / 0.13, INT8 1.07 / 0.25, FP8 1.03 / 0.21. Also: the KV memory of a token.

mod gpu_common;

use std::sync::Arc;

use marlin_engine::runner::Runner;
use marlin_models::kv_cache::{KvCache, KvDtype, BLOCK_SIZE};
use marlin_models::{Device, GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};

const QUANT: [KvDtype; 2] = [KvDtype::Int8, KvDtype::Fp8E4M3];
/// Decode steps after the prompt.
const STEPS: usize = 3;

/// Logits of the prompt's last token, then of `STEPS` decode steps fed `feed` (or, when
/// `feed` is empty, the run's own greedy tokens), and the tokens fed.
fn run(
    model: &Arc<Model>,
    device: &Device,
    dtype: KvDtype,
    prompt: &[u32],
    feed: &[u32],
) -> (Vec<Vec<f32>>, Vec<u32>) {
    let mut r = Runner::with_kv_dtype(model.clone(), device.clone(), 2, false, dtype).unwrap();
    let table = [1u32, 0];
    let mut step = |tokens: &[u32], start_pos: usize| {
        let seq = SeqInput {
            tokens,
            start_pos,
            block_table: &table,
            logits: LogitsRequest::Last,
        };
        r.forward(&[seq]).unwrap().row(0).to_vec()
    };
    let mut rows = vec![step(prompt, 0)];
    let mut fed = Vec::new();
    for i in 0..STEPS {
        let t = feed.get(i).copied().unwrap_or_else(|| argmax(&rows[i]));
        fed.push(t);
        rows.push(step(&[t], prompt.len() + i));
    }
    (rows, fed)
}

fn argmax(x: &[f32]) -> u32 {
    (0..x.len()).fold(0, |b, i| if x[i] > x[b] { i } else { b }) as u32
}

/// (max, mean) |Δ| over all rows.
fn diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, f32) {
    let d: Vec<f32> = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .collect();
    let max = d.iter().copied().fold(0.0, f32::max);
    (max, d.iter().sum::<f32>() / d.len() as f32)
}

#[test]
fn quantized_kv_runs_on_cpu_and_gpu() {
    let model = gpu_common::load("default");
    let prompt = model.encode_prompt("Paris is the capital of").unwrap();
    // The greedy continuation of the CPU F16 run feeds every run.
    let (cpu_f16, feed) = run(&model, &Device::Cpu, KvDtype::F16, &prompt, &[]);
    let cpu: Vec<_> = QUANT
        .iter()
        .map(|&d| run(&model, &Device::Cpu, d, &prompt, &feed).0)
        .collect();
    for (dtype, q) in QUANT.iter().zip(&cpu) {
        let (max, mean) = diff(q, &cpu_f16);
        eprintln!("cpu {dtype:?} vs f16: max {max} mean {mean}");
        assert!(
            max > 0.0 && max < 3.0 && mean < 0.5,
            "cpu {dtype:?}: max {max} mean {mean}"
        );
    }

    let Some(ctx) = gpu_common::gpu_ctx() else {
        return;
    };
    let gpu = Device::Gpu(Arc::new(GpuModel::new(ctx, &model).unwrap()));
    let gpu_f16 = run(&model, &gpu, KvDtype::F16, &prompt, &feed).0;
    let (dev_max, dev_mean) = diff(&gpu_f16, &cpu_f16);
    eprintln!("gpu f16 vs cpu f16: max {dev_max} mean {dev_mean}");
    for (dtype, cq) in QUANT.iter().zip(&cpu) {
        let gq = run(&model, &gpu, *dtype, &prompt, &feed).0;
        let (max, mean) = diff(&gq, &gpu_f16);
        eprintln!("gpu {dtype:?} vs gpu f16: max {max} mean {mean}");
        assert!(
            max > 0.0 && max < 3.0 && mean < 0.5,
            "gpu {dtype:?}: max {max} mean {mean}"
        );
        let (max, mean) = diff(&gq, cq);
        eprintln!("gpu {dtype:?} vs cpu {dtype:?}: max {max} mean {mean}");
        assert!(
            max < 2.0 && mean < 0.4,
            "gpu vs cpu {dtype:?}: max {max} mean {mean}"
        );
    }
}

#[test]
fn kv_memory_counts_the_quantized_bytes() {
    let model = gpu_common::load("default");
    let c = &model.config;
    // SmolLM2-135M: 30 layers × 3 kv heads × head_dim 64, K and V.
    let f16 = KvCache::bytes_per_token_dtype(c, KvDtype::F16);
    assert_eq!(f16, 30 * 2 * 3 * 64 * 2);
    assert_eq!(GpuKvCache::bytes_per_token(c, KvDtype::F16), f16);
    let blocks = |per_token: usize| (64 << 20) / (per_token * BLOCK_SIZE);
    assert_eq!(blocks(f16), 182, "f16 blocks in 64 MiB");
    for dtype in QUANT {
        let q = KvCache::bytes_per_token_dtype(c, dtype);
        assert_eq!(
            q,
            30 * 2 * 3 * (64 + 4),
            "{dtype:?}: codes + f32 scale per head row"
        );
        // The GPU cache allocates exactly what the block count is computed from.
        assert_eq!(GpuKvCache::bytes_per_token(c, dtype), q, "{dtype:?}");
        assert_eq!(blocks(q), 342, "{dtype:?} blocks in 64 MiB");
    }
}

#[test]
fn gpu_copy_on_write_moves_quantized_codes_and_scales() {
    let Some(ctx) = gpu_common::gpu_ctx() else {
        return;
    };
    let model = gpu_common::load("default");
    let gpu = Device::Gpu(Arc::new(GpuModel::new(ctx, &model).unwrap()));
    let prompt = model.encode_prompt("1, 2, 3, 4, 5,").unwrap();
    for dtype in QUANT {
        let mut r = Runner::with_kv_dtype(model.clone(), gpu.clone(), 3, false, dtype).unwrap();
        let step = |r: &mut Runner, tokens: &[u32], start_pos: usize, block: u32| {
            let table = [block];
            let seq = SeqInput {
                tokens,
                start_pos,
                block_table: &table,
                logits: LogitsRequest::Last,
            };
            r.forward(&[seq]).unwrap().row(0).to_vec()
        };
        let first = step(&mut r, &prompt, 0, 2);
        let next = [argmax(&first)];
        // The prompt's block copied to block 0 (and block 1 left empty) decodes the same
        // next step, bit for bit, as the original block.
        r.copy_block(2, 0).unwrap();
        let from_copy = step(&mut r, &next, prompt.len(), 0);
        let from_orig = step(&mut r, &next, prompt.len(), 2);
        assert_eq!(from_copy, from_orig, "{dtype:?}");
        let from_empty = step(&mut r, &next, prompt.len(), 1);
        assert_ne!(
            from_empty, from_orig,
            "{dtype:?}: an empty block must differ"
        );
    }
}
