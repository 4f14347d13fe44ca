//! Mixture-of-experts models on the GPU (lavapipe in CI; `MARLIN_SKIP_GPU=1` skips when no
//! adapter): a Q8_0 GGUF of the tiny Qwen3-MoE (quantized stacked experts through
//! `moe_gemv`) against the CPU on the same weights, prompt and token-by-token decode; and a
//! step's dispatch count that does not grow with `top_k`; the experts grouped by expert
//! (the prefill path) against the CPU.

mod moe_common;

use std::path::PathBuf;
use std::sync::Arc;

use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::kv_cache::KvCache;
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};
use moe_common::gguf::{write_gguf, Opts, Quant};
use moe_common::{golden, load, tiny};

fn gpu_ctx() -> Option<Arc<GpuContext>> {
    match GpuContext::new(DeviceSelector::Gpu) {
        Ok(Some(c)) => Some(Arc::new(c)),
        _ if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => None,
        other => panic!("no wgpu adapter: {:?}", other.err()),
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("marlin-moe-gpu-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Logits of every step of a token-by-token decode of `ids` on the CPU and the GPU.
fn decode_both(model: &Model, gpu: &GpuModel, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let mut kv = KvCache::for_tokens(&model.config, ids.len());
    let gkv = GpuKvCache::new(gpu, kv.num_blocks()).unwrap();
    let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
    let (mut cpu, mut on_gpu) = (Vec::new(), Vec::new());
    for (i, &t) in ids.iter().enumerate() {
        let seq = SeqInput {
            tokens: &[t],
            start_pos: i,
            block_table: &table,
            logits: LogitsRequest::Last,
        };
        cpu.extend(
            model
                .forward(std::slice::from_ref(&seq), &mut kv)
                .unwrap()
                .data,
        );
        on_gpu.extend(gpu.forward(&[seq], &gkv).unwrap().data);
    }
    (cpu, on_gpu)
}

/// Logits of every position of `ids` from one whole-prompt step on the CPU and the GPU.
fn prompt_both(model: &Model, gpu: &GpuModel, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let mut kv = KvCache::for_tokens(&model.config, ids.len());
    let gkv = GpuKvCache::new(gpu, kv.num_blocks()).unwrap();
    let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
    let seq = SeqInput {
        tokens: ids,
        start_pos: 0,
        block_table: &table,
        logits: LogitsRequest::All,
    };
    let cpu = model
        .forward(std::slice::from_ref(&seq), &mut kv)
        .unwrap()
        .data;
    (cpu, gpu.forward(&[seq], &gkv).unwrap().data)
}

fn nmse(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    num / den.max(1e-30)
}

#[test]
fn q8_0_qwen3_moe_gguf_on_gpu_matches_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let dir = temp_dir("q8");
    let opts = Opts {
        split_kv_b: false,
        mtp: false,
        quant: Quant::Q8_0,
    };
    let model = load(&write_gguf("qwen3_moe", "qwen3moe", opts, &dir));
    let gpu = GpuModel::new(ctx, &model).unwrap();
    let ids = &golden("qwen3_moe").prompts[0].ids;
    // Whole prompt (GEMM router, slot kernels over every token).
    let (want, got) = prompt_both(&model, &gpu, ids);
    let e = nmse(&got, &want);
    eprintln!("q8_0 qwen3_moe prompt: GPU vs CPU nmse {e:e}");
    assert!(e < 1e-3, "prompt nmse {e:e}");
    let (cpu, on_gpu) = decode_both(&model, &gpu, ids);
    let e = nmse(&on_gpu, &cpu);
    eprintln!("q8_0 qwen3_moe decode: GPU vs CPU nmse {e:e}");
    assert!(e < 1e-3, "decode nmse {e:e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn moe_step_dispatches_do_not_grow_with_top_k() {
    let Some(ctx) = gpu_ctx() else { return };
    let mut model = load(&tiny("qwen3_moe"));
    let ids = [1u32, 17, 42];
    let mut counts = Vec::new();
    for top_k in [1, 2, 4] {
        model.config.moe.as_mut().unwrap().top_k = top_k;
        let gpu = GpuModel::new(ctx.clone(), &model).unwrap();
        let (cpu, on_gpu) = decode_both(&model, &gpu, &ids);
        let e = nmse(&on_gpu, &cpu);
        assert!(e < 1e-6, "top_k {top_k}: GPU vs CPU nmse {e:e}");
        counts.push(gpu.dispatch_count());
    }
    eprintln!("decode step dispatches for top_k 1, 2, 4: {counts:?}");
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
}

/// Experts grouped by expert (`moe_sort` + `moe_gemv_multi`, forced from one token) give
/// the CPU's prompt and decode logits, on the tiny Qwen3-MoE and GLM-4.7-Flash (f32) and a
/// Q8_0 GGUF of the former.
#[test]
fn grouped_experts_match_the_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let dir = temp_dir("grouped");
    let opts = Opts {
        split_kv_b: false,
        mtp: false,
        quant: Quant::Q8_0,
    };
    let models = [
        ("qwen3_moe", load(&tiny("qwen3_moe")), 1e-6),
        ("glm4_moe_lite", load(&tiny("glm4_moe_lite")), 1e-6),
        (
            "qwen3_moe q8_0",
            load(&write_gguf("qwen3_moe", "qwen3moe", opts, &dir)),
            1e-3,
        ),
    ];
    for (name, model, tol) in models {
        let gpu = GpuModel::new(ctx.clone(), &model)
            .unwrap()
            .with_moe_grouped_min(1);
        let ids = &golden(name.split(' ').next().unwrap()).prompts[0].ids;
        let (want, got) = prompt_both(&model, &gpu, ids);
        let e = nmse(&got, &want);
        assert!(e < tol, "{name} prompt: grouped GPU vs CPU nmse {e:e}");
        let (cpu, on_gpu) = decode_both(&model, &gpu, ids);
        let e = nmse(&on_gpu, &cpu);
        assert!(e < tol, "{name} decode: grouped GPU vs CPU nmse {e:e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
