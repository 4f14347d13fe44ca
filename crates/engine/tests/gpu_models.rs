//! The GPU forward pass on small models, on whatever adapter `DeviceSelector::Gpu` opens
//! (lavapipe in CI; `MARLIN_SKIP_GPU=1` skips when none): every architecture's tiny model
//! against transformers, batched steps, argmax read-back, paged logits, f32 KV, random-weight
//! models in every weight format against the CPU, and `Device::open`.

mod gpu_common;

use std::sync::Arc;

use gpu_common::{cpu_gpu_pair, gpu_ctx, json_ids, json_logits};
use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_models::gpu_forward::marlin_gpu::CacheDtype;
use marlin_models::{Device, GpuModel, LogitsRequest, Model};

/// `Device::open` parses `--device` values: `cpu` stays on the CPU, `gpu` uploads, junk is
/// an error.
#[test]
fn device_open_parses_selectors() {
    if gpu_ctx().is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/llama");
    let model = Model::load(&dir, &mut |_, _| {}).expect("load");
    assert!(matches!(Device::open("cpu", &model), Ok(Device::Cpu)));
    assert!(Device::open("tpu", &model).is_err());
    let gpu = Device::open("gpu", &model).expect("gpu");
    assert!(matches!(gpu, Device::Gpu(_)), "{}", gpu.name());
    assert_ne!(gpu.name(), "cpu");
}

/// Random-weight SmolLM2-shaped models in the other weight formats (every GPU matmul and
/// embedding kernel in a full forward pass): prompt logits close to the CPU's by normalized
/// mean squared error. Measured on lavapipe: ~1e-12 for f16/bf16, ~1e-6 for q4_0, q5_0 and
/// q4_k, 2e-4..5e-4 for q4_1, q5_1, q8_0, q5_k and q6_k (the CPU kernels that multiply
/// 8-bit quantized activations); each GPU kernel alone matches the f64 reference to 1e-10 (crates/gpu).
#[test]
fn synthetic_models_in_every_format_match_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let formats = [
        "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k", "f16", "bf16",
    ];
    for format in formats {
        let spec = format!("synthetic:smollm2-135m:{format}");
        let nmse = cpu_gpu_pair(&ctx, &spec, &[1u32, 400, 9000, 17, 3000, 42]).nmse;
        eprintln!("{spec}: logits nmse GPU vs CPU {nmse:e}");
        assert!(nmse < 1e-3, "{spec}: nmse {nmse:e}");
    }
}

/// An uploaded model can be shared between threads (a server's workers).
#[test]
fn gpu_model_is_send_and_sync() {
    use std::marker::PhantomData;
    fn send_sync<T: Send + Sync>(_: PhantomData<T>) -> bool {
        true
    }
    assert!(send_sync(PhantomData::<GpuModel>));
    assert!(send_sync(PhantomData::<marlin_models::GpuKvCache>));
}

/// Relative tolerance of GPU logits against transformers on the tiny fixtures (f32/bf16
/// weights, so no quantization noise): max |Δ| ≤ TINY_REL_TOL × max(1, max |golden|).
const TINY_REL_TOL: f32 = 1e-3;

/// Every architecture's tiny random-weight model (fixtures/tiny, goldens from transformers:
/// biases, q/k norms, sandwich norms, sliding windows, NEOX and scaled RoPE) on the GPU:
/// logits at every position within tolerance, same greedy tokens, and a two-sequence batch
/// giving the same rows as the sequences alone.
#[test]
fn tiny_models_on_gpu_match_transformers() {
    let Some(ctx) = gpu_ctx() else { return };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny");
    for arch in ["llama", "llama3", "mistral", "qwen2", "qwen3", "gemma3"] {
        let dir = root.join(arch);
        let text = std::fs::read_to_string(dir.join("golden.json")).expect("golden");
        let golden: serde_json::Value = serde_json::from_str(&text).expect("json");
        let model = Arc::new(Model::load(&dir, &mut |_, _| {}).expect("load"));
        let gpu = Arc::new(GpuModel::new(ctx.clone(), &model).expect("upload"));
        let mut engine = Engine::new(model.clone(), 64)
            .with_gpu(gpu.clone())
            .expect("gpu kv");
        let prompts = golden["prompts"].as_array().expect("prompts");
        for p in prompts {
            let ids = json_ids(&p["ids"]);
            let want = json_logits(p);
            let got = engine
                .prompt_logits(&ids, LogitsRequest::All)
                .expect("gpu logits");
            assert_eq!(got.data.len(), want.len(), "{arch}");
            let max_abs = want.iter().fold(0f32, |m, &x| m.max(x.abs()));
            let worst = got
                .data
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let tol = TINY_REL_TOL * max_abs.max(1.0);
            eprintln!("{arch}/{}: max |Δ| {worst} (tol {tol})", p["name"]);
            assert!(
                worst <= tol,
                "{arch}/{}: max |Δ| {worst} > {tol}",
                p["name"]
            );
        }
        let prompt =
            json_ids(&prompts[golden["greedy"]["prompt"].as_u64().expect("i") as usize]["ids"]);
        let tokens = json_ids(&golden["greedy"]["tokens"]);
        let params = SamplingParams {
            max_tokens: tokens.len(),
            ignore_eos: true,
            ..Default::default()
        };
        let out = engine.generate(&prompt, &params, &mut |_| {}).expect("gen");
        assert_eq!(out.token_ids, tokens, "{arch}: greedy tokens");
        check_batch(
            arch,
            &model,
            &gpu,
            &prompts
                .iter()
                .map(|p| json_ids(&p["ids"]))
                .collect::<Vec<_>>(),
        );
    }
}

/// Two sequences in one step (different block tables, `All` and `Last` logits) give the
/// rows each gives alone, and `forward_argmax` agrees with the logits' argmax.
fn check_batch(arch: &str, model: &Model, gpu: &GpuModel, prompts: &[Vec<u32>]) {
    use marlin_models::{GpuKvCache, SeqInput};
    let kv = GpuKvCache::new(gpu, 8).expect("kv");
    let (a, b) = (&prompts[0], &prompts[1]);
    let ta = [5u32, 2];
    let tb = [7u32, 0, 3];
    let alone_a = gpu
        .forward(
            &[SeqInput {
                tokens: a,
                start_pos: 0,
                block_table: &ta,
                logits: LogitsRequest::All,
            }],
            &kv,
        )
        .expect("a");
    let alone_b = gpu
        .forward(
            &[SeqInput {
                tokens: b,
                start_pos: 0,
                block_table: &tb,
                logits: LogitsRequest::Last,
            }],
            &kv,
        )
        .expect("b");
    let seqs = [
        SeqInput {
            tokens: a,
            start_pos: 0,
            block_table: &ta,
            logits: LogitsRequest::All,
        },
        SeqInput {
            tokens: b,
            start_pos: 0,
            block_table: &tb,
            logits: LogitsRequest::Last,
        },
    ];
    let both = gpu.forward(&seqs, &kv).expect("batch");
    assert_eq!(both.rows_per_seq, vec![a.len(), 1], "{arch}");
    let mut alone = alone_a.data.clone();
    alone.extend_from_slice(&alone_b.data);
    let worst = both
        .data
        .iter()
        .zip(&alone)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-3, "{arch}: batched vs alone max |Δ| {worst}");
    let ids = gpu.forward_argmax(&seqs, &kv).expect("argmax");
    assert_eq!(ids.len(), both.rows(), "{arch}");
    for (r, &id) in ids.iter().enumerate() {
        let row = both.row(r);
        let best = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(row[id as usize], best, "{arch}: argmax row {r}");
    }
    // An f32 KV cache gives the f16 cache's logits up to f16 rounding.
    let kv32 = GpuKvCache::with_dtype(gpu, 8, CacheDtype::F32).expect("kv32");
    let f32_kv = gpu.forward(&seqs, &kv32).expect("f32 kv");
    let d32 = f32_kv
        .data
        .iter()
        .zip(&both.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(d32 < 2e-2, "{arch}: f32 vs f16 KV max |Δ| {d32}");
    // Logits split over buffers of 3 rows read back the same.
    let paged = GpuModel::new(gpu.ctx().clone(), model)
        .expect("upload")
        .with_logits_page_bytes(3 * 4 * gpu.config().vocab as u64 + 5);
    let kv2 = GpuKvCache::new(&paged, 8).expect("kv");
    let again = paged.forward(&seqs, &kv2).expect("paged");
    assert_eq!(again.data, both.data, "{arch}: paged logits");
    assert_eq!(
        paged.forward_argmax(&seqs, &kv2).expect("argmax"),
        ids,
        "{arch}"
    );
    // Decode steps, one row per sequence: the rows are adjacent, so the LM head runs once
    // for all of them (the step's dispatch count does not grow with the batch), also when
    // the rows span logits pages.
    let tables: [&[u32]; 4] = [&ta, &tb, &[1], &[4]];
    let starts = [a.len(), b.len(), 0, 0];
    let toks = [[3u32], [4], [5], [6]];
    let decode = |k: usize| -> Vec<SeqInput<'_>> {
        (0..k)
            .map(|i| SeqInput {
                tokens: &toks[i],
                start_pos: starts[i],
                block_table: tables[i],
                logits: LogitsRequest::Last,
            })
            .collect()
    };
    gpu.forward(&decode(2), &kv).expect("decode 2");
    let two = gpu.dispatch_count();
    let four = gpu.forward(&decode(4), &kv).expect("decode 4");
    assert_eq!(
        gpu.dispatch_count(),
        two,
        "{arch}: one LM head dispatch per step"
    );
    let four_paged = paged.forward(&decode(4), &kv2).expect("paged decode");
    assert_eq!(
        four_paged.data, four.data,
        "{arch}: decode rows across logits pages"
    );
    // A block id past the cache and a token past the vocabulary are errors.
    let bad_block = [SeqInput {
        tokens: a,
        start_pos: 0,
        block_table: &[99, 0],
        logits: LogitsRequest::Last,
    }];
    assert!(gpu.forward(&bad_block, &kv).is_err(), "{arch}");
    let bad_tok = [SeqInput {
        tokens: &[u32::MAX],
        start_pos: 0,
        block_table: &ta,
        logits: LogitsRequest::Last,
    }];
    assert!(gpu.forward(&bad_tok, &kv).is_err(), "{arch}");
}
