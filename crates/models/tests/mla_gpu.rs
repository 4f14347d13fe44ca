//! MLA models (GLM-4.7-Flash / DeepSeek-V3 tiny configs) on the GPU (lavapipe in CI;
//! `MARLIN_SKIP_GPU=1` skips when no adapter): whole prompts and token-by-token decode against
//! the transformers goldens, from the Hugging Face folders and from GGUF files (split
//! `attn_k_b`/`attn_v_b`, legacy `attn_kv_b`, Q8_0 against the CPU); split-K attention over
//! the latent cache; greedy tokens equal to the CPU's; the latent cache size per token.

mod moe_common;

use std::path::PathBuf;
use std::sync::Arc;

use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::kv_cache::KvCache;
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};
use moe_common::gguf::{write_gguf, Opts, Quant};
use moe_common::{check_logits_tol, f16_gemm, golden, gpu_rel_tol, load, tiny};

fn gpu_ctx() -> Option<Arc<GpuContext>> {
    match GpuContext::new(DeviceSelector::Gpu) {
        Ok(Some(c)) => Some(Arc::new(c)),
        _ if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => None,
        other => panic!("no wgpu adapter: {:?}", other.err()),
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("marlin-mla-gpu-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rows(logits: &[f32], vocab: usize) -> Vec<Vec<f32>> {
    logits.chunks_exact(vocab).map(<[f32]>::to_vec).collect()
}

/// Every position's logits from one whole-prompt GPU step.
fn gpu_prompt(gpu: &GpuModel, ids: &[u32]) -> Vec<Vec<f32>> {
    let blocks = ids.len().div_ceil(16);
    let kv = GpuKvCache::new(gpu, blocks).unwrap();
    let table: Vec<u32> = (0..blocks as u32).collect();
    let seq = SeqInput {
        tokens: ids,
        start_pos: 0,
        block_table: &table,
        logits: LogitsRequest::All,
    };
    rows(&gpu.forward(&[seq], &kv).unwrap().data, gpu.config().vocab)
}

/// Logits of a token-by-token decode of `ids` on the GPU, and on the CPU when given.
fn decode(gpu: &GpuModel, cpu: Option<&Model>, ids: &[u32]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let blocks = ids.len().div_ceil(16);
    // Blocks in reverse order: the block table is really followed.
    let table: Vec<u32> = (0..blocks as u32).rev().collect();
    let gkv = GpuKvCache::new(gpu, blocks).unwrap();
    let mut kv = cpu.map(|m| KvCache::for_tokens(&m.config, ids.len()));
    let (mut on_gpu, mut on_cpu) = (Vec::new(), Vec::new());
    for (i, &t) in ids.iter().enumerate() {
        let seq = SeqInput {
            tokens: &[t],
            start_pos: i,
            block_table: &table,
            logits: LogitsRequest::Last,
        };
        on_gpu.push(gpu.forward(std::slice::from_ref(&seq), &gkv).unwrap().data);
        if let (Some(m), Some(kv)) = (cpu, kv.as_mut()) {
            on_cpu.push(m.forward(&[seq], kv).unwrap().data);
        }
    }
    (on_gpu, on_cpu)
}

/// The GPU reproduces `name`'s goldens: every prompt whole and token by token.
fn check_golden(what: &str, gpu: &GpuModel, name: &str) {
    let g = golden(name);
    let tol = gpu_rel_tol(gpu.ctx());
    for p in &g.prompts {
        let got = gpu_prompt(gpu, &p.ids);
        check_logits_tol(
            &format!("{what}/{} GPU prompt", p.name),
            &got,
            &p.logits,
            tol,
        );
        let (got, _) = decode(gpu, None, &p.ids);
        check_logits_tol(
            &format!("{what}/{} GPU decode", p.name),
            &got,
            &p.logits,
            tol,
        );
    }
}

/// NMSE bound of the GPU against the CPU: 1e-8 in f32, 1e-5 where prompt GEMMs round
/// their operands to f16 (an H200 measured 7e-7).
fn nmse_tol(gpu: &GpuModel) -> f64 {
    if f16_gemm(gpu.ctx()) {
        1e-5
    } else {
        1e-8
    }
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Greedy continuation of `prompt` on the GPU through the paged latent cache.
fn gpu_greedy(gpu: &GpuModel, prompt: &[u32], n: usize) -> Vec<u32> {
    let total = prompt.len() + n;
    let blocks = total.div_ceil(16);
    let kv = GpuKvCache::new(gpu, blocks).unwrap();
    let table: Vec<u32> = (0..blocks as u32).collect();
    let mut ids = prompt.to_vec();
    let mut start = 0;
    while ids.len() < total {
        let seq = SeqInput {
            tokens: &ids[start..],
            start_pos: start,
            block_table: &table,
            logits: LogitsRequest::Last,
        };
        let l = gpu.forward(&[seq], &kv).unwrap();
        start = ids.len();
        ids.push(argmax(&l.data));
    }
    ids[prompt.len()..].to_vec()
}

#[test]
fn glm4_moe_lite_on_gpu_matches_transformers_and_cpu_greedy() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("glm4_moe_lite"));
    let gpu = GpuModel::new(ctx, &model).unwrap();
    check_golden("glm4_moe_lite HF", &gpu, "glm4_moe_lite");
    let g = golden("glm4_moe_lite");
    let prompt = &g.prompts[g.greedy_prompt].ids;
    let got = gpu_greedy(&gpu, prompt, g.greedy_tokens.len());
    assert_eq!(got, g.greedy_tokens, "GPU greedy vs transformers");
    // 3 layers, 2 of them MoE: the shared expert (the routed experts' shape) rides as one
    // more routed slot, 3 dispatches fewer per MoE layer than a dense shared MLP (54 -> 48);
    // the fused decode step folds norms and residual adds into the GEMVs and the MoE
    // combine (44), each MoE layer's SiLU gating into its down GEMV (42), its norm into the
    // router GEMV, which stores the normed input for the experts (40), the dense layer's
    // SwiGLU into its gate|up GEMV (39), and each MoE layer's combine into its down GEMV
    // (37: `moe_gemv_silu_combine`, on every Vulkan device).
    assert!(
        gpu.fused_decode(),
        "MLA + MoE layers fuse their decode norms"
    );
    assert_eq!(gpu.dispatch_count(), 37, "dispatches per decode step");
}

/// The opt-in MoE norm fold (`moe_gemv_norm` and `gemv_norm` on the router) decodes the
/// same goldens in as many dispatches as the default (the norm in the router alone).
#[test]
fn glm4_moe_lite_with_the_moe_norm_folded_matches_transformers() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("glm4_moe_lite"));
    let gpu = GpuModel::new(ctx, &model).unwrap().with_moe_fold_norm(true);
    check_golden("glm4_moe_lite HF, MoE norm folded", &gpu, "glm4_moe_lite");
    let g = golden("glm4_moe_lite");
    let prompt = &g.prompts[g.greedy_prompt].ids;
    assert_eq!(
        gpu_greedy(&gpu, prompt, g.greedy_tokens.len()),
        g.greedy_tokens
    );
    assert_eq!(gpu.dispatch_count(), 37, "dispatches per decode step");
}

/// Every step with the prompt forms from one token on: attention as one GEMM pair per
/// layer (`attn_mla_gemm`) and q̃ from `q_b` with `W_UKᵀ` folded in (with q_lora). Whole
/// prompts and token-by-token decode reproduce the goldens, with and without q_lora; the
/// fused decode step of GLM runs the folded GEMV in place of q_nope's and the per-head one.
#[test]
fn mla_prompt_forms_match_transformers() {
    let Some(ctx) = gpu_ctx() else { return };
    for name in ["glm4_moe_lite", "deepseek_v3"] {
        let model = load(&tiny(name));
        let gpu = GpuModel::new(ctx.clone(), &model)
            .unwrap()
            .with_mla_gemm_min(1)
            .with_mla_fold_min(1);
        check_golden(&format!("{name} HF, prompt forms"), &gpu, name);
        if name == "glm4_moe_lite" {
            // 37 - 3 (one q GEMV fewer per layer) + 3 · 4 (five attention dispatches for
            // attn_mla's one).
            assert_eq!(gpu.dispatch_count(), 46, "decode step in the prompt forms");
        }
    }
}

#[test]
fn deepseek_v3_without_q_lora_on_gpu_matches_transformers() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("deepseek_v3"));
    let gpu = GpuModel::new(ctx, &model).unwrap();
    check_golden("deepseek_v3 HF", &gpu, "deepseek_v3");
}

#[test]
fn glm4_moe_lite_gguf_on_gpu_matches_transformers() {
    let Some(ctx) = gpu_ctx() else { return };
    for split_kv_b in [true, false] {
        let dir = temp_dir(&format!("f32-{split_kv_b}"));
        let opts = Opts {
            split_kv_b,
            mtp: false,
            quant: Quant::F32,
        };
        let model = load(&write_gguf("glm4_moe_lite", "deepseek2", opts, &dir));
        let gpu = GpuModel::new(ctx.clone(), &model).unwrap();
        let what = format!("glm4_moe_lite GGUF (split kv_b {split_kv_b})");
        check_golden(&what, &gpu, "glm4_moe_lite");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

fn nmse(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        num += f64::from(x - y).powi(2);
        den += f64::from(*y).powi(2);
    }
    num / den.max(1e-30)
}

/// Q8_0 GGUF (quantized q_a|kv_a, W_UV through `moe_gemv`, experts) and its dequantized
/// twin against the CPU, token by token. The twin runs the CPU's f32 weights (only summation
/// order differs); Q8_0 runs quantized kernels on both sides whose activation rounding
/// differs (measured nmse 1.4e-4 at the first token, 2.9e-3 over 20), so it gets a looser
/// bound; near-tied logits of the random model may then swap their order.
#[test]
fn q8_0_glm4_moe_lite_gguf_on_gpu_matches_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let ids: Vec<u32> = (0..20).map(|i| (i * 37 + 11) % 320).collect();
    for (quant, tol) in [(Quant::Q8_0Twin, 1e-8), (Quant::Q8_0, 1e-2)] {
        let dir = temp_dir(&format!("q8-{}", quant as u8));
        let opts = Opts {
            split_kv_b: true,
            mtp: false,
            quant,
        };
        let model = load(&write_gguf("glm4_moe_lite", "deepseek2", opts, &dir));
        let gpu = GpuModel::new(ctx.clone(), &model).unwrap();
        let (on_gpu, on_cpu) = decode(&gpu, Some(&model), &ids);
        let e = nmse(&on_gpu, &on_cpu);
        eprintln!(
            "glm4_moe_lite GGUF quant {}: GPU vs CPU decode nmse {e:e}",
            quant as u8
        );
        assert!(e < tol, "quant {}: nmse {e:e}", quant as u8);
        if quant == Quant::Q8_0Twin {
            let top: Vec<u32> = on_gpu.iter().map(|r| argmax(r)).collect();
            let want: Vec<u32> = on_cpu.iter().map(|r| argmax(r)).collect();
            assert_eq!(top, want, "greedy picks along the decode");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A 257-token prompt, then decode steps whose attention over the latent cache is split
/// (split-K + combine: one more dispatch per layer) or not; both match the CPU.
#[test]
fn split_k_mla_decode_after_a_long_prompt_matches_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("glm4_moe_lite"));
    let ids: Vec<u32> = (0..260).map(|i| (i * 53 + 7) % 320).collect();
    let (prompt, rest) = ids.split_at(257);
    let blocks = ids.len().div_ceil(16);
    let table: Vec<u32> = (0..blocks as u32).rev().collect();
    let seq = |tokens, start_pos| SeqInput {
        tokens,
        start_pos,
        block_table: &table,
        logits: LogitsRequest::Last,
    };
    let mut kv = KvCache::for_tokens(&model.config, ids.len());
    let mut want = vec![model.forward(&[seq(prompt, 0)], &mut kv).unwrap().data];
    for (i, t) in rest.iter().enumerate() {
        let s = seq(std::slice::from_ref(t), 257 + i);
        want.push(model.forward(&[s], &mut kv).unwrap().data);
    }
    let mut counts = Vec::new();
    for min_keys in [usize::MAX, 1] {
        let gpu = GpuModel::new(ctx.clone(), &model)
            .unwrap()
            .with_attn_split_min_keys(min_keys);
        let gkv = GpuKvCache::new(&gpu, blocks).unwrap();
        let mut got = vec![gpu.forward(&[seq(prompt, 0)], &gkv).unwrap().data];
        for (i, t) in rest.iter().enumerate() {
            let s = seq(std::slice::from_ref(t), 257 + i);
            got.push(gpu.forward(&[s], &gkv).unwrap().data);
        }
        counts.push(gpu.dispatch_count());
        let e = nmse(&got, &want);
        eprintln!("split from {min_keys} keys: GPU vs CPU nmse {e:e}");
        assert!(e < nmse_tol(&gpu), "split from {min_keys} keys: nmse {e:e}");
    }
    let layers = model.config.n_layers as u32;
    assert_eq!(
        counts[1],
        counts[0] + layers,
        "one attn_combine per layer: {counts:?}"
    );
}

#[test]
fn gpu_latent_cache_holds_rank_plus_rope_values_per_token_per_layer() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("glm4_moe_lite"));
    let m = model.config.mla.clone().unwrap();
    let gpu = GpuModel::new(ctx, &model).unwrap();
    let kv = GpuKvCache::new(&gpu, 5).unwrap();
    assert_eq!(kv.values_per_token_layer(&gpu), 32 + 8);
    assert_eq!(m.kv_lora_rank + m.qk_rope_head_dim, 40);
    // f16 values: 5 blocks × 16 tokens × 40 values × 2 bytes, one buffer per layer.
    assert_eq!(kv.layer_bytes(), 5 * 16 * 40 * 2);
    assert!(
        GpuKvCache::with_dtype(&gpu, 5, marlin_gpu_dtype_f32()).is_err(),
        "the latent cache is f16 only"
    );
}

fn marlin_gpu_dtype_f32() -> marlin_models::gpu_forward::marlin_gpu::CacheDtype {
    marlin_models::gpu_forward::marlin_gpu::CacheDtype::F32
}

/// Copy-on-write of a latent block: a sequence whose table points at the copy decodes the
/// same logits as the one reading the original.
#[test]
fn copied_latent_block_decodes_like_the_original() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("glm4_moe_lite"));
    let gpu = GpuModel::new(ctx, &model).unwrap();
    let kv = GpuKvCache::new(&gpu, 4).unwrap();
    let ids: Vec<u32> = (0..20).map(|i| (i * 29 + 3) % 320).collect();
    let step = |tokens: &[u32], start_pos: usize, table: &[u32]| {
        let seq = SeqInput {
            tokens,
            start_pos,
            block_table: table,
            logits: LogitsRequest::Last,
        };
        gpu.forward(&[seq], &kv).unwrap().data
    };
    // Positions 0..16 fill block 0, 16..19 block 1.
    step(&ids[..19], 0, &[0, 1]);
    kv.copy_block(&gpu, 0, 2).unwrap();
    kv.copy_block(&gpu, 1, 3).unwrap();
    let a = step(&ids[19..], 19, &[0, 1]);
    let b = step(&ids[19..], 19, &[2, 3]);
    assert_eq!(a, b, "decode over copied latent blocks");
    let fresh = GpuKvCache::new(&gpu, 4).unwrap();
    let seq = SeqInput {
        tokens: &ids[19..],
        start_pos: 19,
        block_table: &[2, 3],
        logits: LogitsRequest::Last,
    };
    let empty = gpu.forward(&[seq], &fresh).unwrap().data;
    assert_ne!(a, empty, "the copy carried the cached rows");
    assert!(
        kv.copy_block(&gpu, 0, 4).is_err(),
        "block outside the cache"
    );
}

/// MLA dims the kernels cannot take are refused when the model is uploaded, not mid-step.
#[test]
fn unsupported_mla_dims_are_refused_at_upload() {
    let Some(ctx) = gpu_ctx() else { return };
    let mut model = load(&tiny("glm4_moe_lite"));
    model.config.mla.as_mut().unwrap().kv_lora_rank = 33;
    let err = GpuModel::new(ctx, &model).err().expect("odd rank refused");
    assert!(err.to_string().contains("kv_lora_rank"), "{err}");
}

/// A step of `a` (table `ta`) and `b` (table `tb`) from positions `pa` / `pb`, every row.
fn pair<'a>(
    a: &'a [u32],
    pa: usize,
    ta: &'a [u32],
    b: &'a [u32],
    pb: usize,
    tb: &'a [u32],
) -> [SeqInput<'a>; 2] {
    let seq = |tokens, start_pos, block_table| SeqInput {
        tokens,
        start_pos,
        block_table,
        logits: LogitsRequest::All,
    };
    [seq(a, pa, ta), seq(b, pb, tb)]
}

/// Two sequences of different lengths in one step (own block tables), prompt then a joint
/// decode step, against the CPU on the same batch.
#[test]
fn batched_sequences_in_one_gpu_step_match_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let model = load(&tiny("glm4_moe_lite"));
    let gpu = GpuModel::new(ctx, &model).unwrap();
    let a: Vec<u32> = (0..21).map(|i| (i * 31 + 5) % 320).collect();
    let b: Vec<u32> = (0..9).map(|i| (i * 17 + 2) % 320).collect();
    let (ta, tb) = ([3u32, 0], [2u32]);
    let gkv = GpuKvCache::new(&gpu, 4).unwrap();
    let mut kv = KvCache::new(&model.config, 4);
    let v = model.config.vocab;
    for (at, bt) in [((0, 20), (0, 8)), ((20, 21), (8, 9))] {
        let step = pair(&a[at.0..at.1], at.0, &ta, &b[bt.0..bt.1], bt.0, &tb);
        let want = model.forward(&step, &mut kv).unwrap().data;
        let got = gpu.forward(&step, &gkv).unwrap().data;
        assert_eq!(got.len(), want.len());
        let e = nmse(&rows(&got, v), &rows(&want, v));
        assert!(
            e < nmse_tol(&gpu),
            "batched step from {at:?} / {bt:?}: nmse {e:e}"
        );
    }
}

/// Trellis MLA projections: q_b cannot be cut by rows (tiles span 16), so its nope / rope
/// halves go up in F16; q_a and kv_a in different formats take two matmuls. One dense layer
/// of `synthetic:glm47-tiny:trellis3` against the CPU (measured nmse 5.9e-5: F16 q_b and
/// the trellis kernels' own rounding on each side).
#[test]
fn trellis_mla_layer_on_gpu_matches_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    let spec = "synthetic:glm47-tiny:trellis3";
    let mut model = marlin_models::synthetic::build(spec, &mut |_, _| {}).unwrap();
    model.weights.blocks.truncate(1);
    model.config.n_layers = 1;
    if let Some(m) = model.config.moe.as_mut() {
        m.sparse_layers.truncate(1);
    }
    let gpu = GpuModel::new(ctx, &model).unwrap();
    let ids: Vec<u32> = (0..6).map(|i| (i * 37 + 11) % 1000).collect();
    let (on_gpu, on_cpu) = decode(&gpu, Some(&model), &ids);
    let e = nmse(&on_gpu, &on_cpu);
    eprintln!("trellis3 MLA layer: GPU vs CPU nmse {e:e}");
    assert!(e < 1e-3, "nmse {e:e}");
}
