//! MLA on the GPU against the CPU backend: `mla_latent` (q_a / kv_a RMSNorms, RoPE of the
//! shared k_pe, paged latent write) against `rms_norm` + `RopeTable` + `PagedLatent`, and
//! `attn_mla` (single pass and split-K + `attn_combine`) against `mla_attention` over the same
//! f16 latent rows, with contexts spanning many blocks of a reversed block table, and its
//! GEMM form for prompt chunks (`attn_mla_gemm`: `mla_q_pack`, `mla_kv_dense`, the score and
//! value GEMMs, `mla_softmax`) against the same reference. Runs on lavapipe (testkit).

mod testkit;

use half::f16;
use marlin_core::rope::{RopeConfig, RopeMode};
use marlin_core::QuantFormat;
use marlin_cpu::attention::mla_attention;
use marlin_cpu::kv_latent::{LatentLayout, PagedLatent};
use marlin_cpu::ops::{rms_norm_inplace, RopeTable};
use marlin_gpu::{
    mla_partial_len, read_bytes, read_f32, record_attn_mla, record_attn_mla_gemm,
    record_attn_mla_gemm_blocks, record_mla_latent, storage_f32, upload_f32, zeroed_f32,
    GpuContext, MlaAttnIo, MlaLatentIo, MlaShape, Op, Span, StepEncoder, Variant,
    MLA_GEMM_KEY_ALIGN, MLA_GEMM_MAX_SCORE_BYTES,
};
use testkit::{assert_sentinels, guarded, nmse, nmse_threshold, random_vec, rng, GUARD};

/// `cos ‖ sin` rows of the half angles per position, as the model's step inputs build them.
fn cs_rows(cfg: &RopeConfig, positions: &[usize]) -> Vec<f32> {
    let f = cfg.inv_freqs();
    let mut out = Vec::new();
    for &p in positions {
        let angles: Vec<f64> = f.iter().map(|&fr| p as f64 * f64::from(fr)).collect();
        out.extend(angles.iter().map(|a| a.cos() as f32));
        out.extend(angles.iter().map(|a| a.sin() as f32));
    }
    out
}

/// A block table of `n_blocks` blocks in reverse order (block 0 of the sequence last).
fn reversed_table(n_blocks: usize) -> Vec<u32> {
    (0..n_blocks).map(|b| (n_blocks - 1 - b) as u32).collect()
}

fn u32_buf(ctx: &GpuContext, v: &[u32]) -> marlin_gpu::PooledBuffer {
    upload_f32(ctx, bytemuck::cast_slice(v)).expect("u32 upload")
}

fn shape(n_tokens: usize, q_lora: usize, mode: RopeMode) -> MlaShape {
    // Five heads: one full group of four sharing the key loads and a partial one.
    MlaShape {
        n_tokens,
        n_heads: 5,
        q_lora,
        rank: 32,
        rope_dim: 8,
        neox: mode == RopeMode::Neox,
        scale: 0.3,
        eps: 1e-6,
    }
}

/// Runs `mla_latent` for tokens at `positions`; returns (normed c_q NMSE, cache NMSE)
/// against the CPU.
fn latent_case(ctx: &GpuContext, q_lora: usize, mode: RopeMode, positions: &[usize]) -> (f64, f64) {
    let s = shape(positions.len(), q_lora, mode);
    let (n, w) = (s.n_tokens, s.width());
    let row = q_lora + w;
    let mut r = rng(7 + q_lora as u64);
    let x: Vec<f32> = random_vec(&mut r, n * row);
    let norms: Vec<f32> = random_vec(&mut r, q_lora + s.rank)
        .iter()
        .map(|v| 1.0 + 0.5 * v)
        .collect();
    let rope = RopeConfig::new(s.rope_dim, 10000.0, mode);
    let n_blocks = positions.iter().max().map_or(1, |p| p / 16 + 1);
    let table = reversed_table(n_blocks);
    let slots: Vec<u32> = positions
        .iter()
        .map(|&p| table[p / 16] * 16 + (p % 16) as u32)
        .collect();

    // CPU: norms, RoPE and the paged write.
    let mut cq = Vec::with_capacity(n * q_lora);
    let mut cache = PagedLatent::new(
        LatentLayout {
            block_size: 16,
            width: w,
        },
        n_blocks,
    )
    .expect("latent");
    let table_cpu = RopeTable::new(&rope, s.rope_dim).expect("rope");
    for (t, xr) in x.chunks_exact(row).enumerate() {
        let mut q = xr[..q_lora].to_vec();
        if q_lora > 0 {
            rms_norm_inplace(&mut q, &norms[..q_lora], s.eps);
        }
        cq.extend(q);
        let mut lat = xr[q_lora..].to_vec();
        rms_norm_inplace(&mut lat[..s.rank], &norms[q_lora..], s.eps);
        table_cpu.apply(&mut lat[s.rank..], &positions[t..t + 1], 1, s.rope_dim);
        cache.write(&table, positions[t], &lat).expect("write");
    }

    // GPU.
    let words = n_blocks * 16 * w / 2;
    let cache_gpu = zeroed_f32(ctx, words).expect("cache");
    let xb = upload_f32(ctx, &x).expect("x");
    let nb = upload_f32(ctx, &norms).expect("norms");
    let cs = upload_f32(ctx, &cs_rows(&rope, positions)).expect("cs");
    let mut meta = vec![0u32; 3];
    meta.extend_from_slice(&slots);
    let sb = u32_buf(ctx, &meta);
    let cqb = upload_f32(ctx, &guarded(n * q_lora.max(1))).expect("cq");
    let mut enc = StepEncoder::new(ctx, "t");
    let io = MlaLatentIo {
        norms: Span::whole(&nb),
        x: &xb,
        cs: Span::whole(&cs),
        slots: Span::new(&sb, 3),
        cache: &cache_gpu,
        cq: &cqb,
    };
    record_mla_latent(&mut enc, &s, &io).expect("mla_latent");
    enc.submit().expect("submit");
    let e_q = if q_lora > 0 {
        let got = read_f32(ctx, &cqb, 0, n * q_lora).expect("read cq");
        nmse(&got, &cq)
    } else {
        0.0
    };
    let bytes = read_bytes(ctx, &cache_gpu, 0, (words * 4) as u64).expect("read cache");
    let all: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let mut buf = vec![0.0; w];
    for &p in positions {
        let slot = (table[p / 16] as usize) * 16 + p % 16;
        got.extend_from_slice(&all[slot * w..(slot + 1) * w]);
        cache.read(&table, p, &mut buf).expect("read");
        want.extend_from_slice(&buf);
    }
    (e_q, nmse(&got, &want))
}

#[test]
fn mla_latent_matches_cpu_norms_rope_and_cache() {
    let Some(ctx) = testkit::ctx() else { return };
    // One f16 rounding of a value that differs in its last f32 bits: at most 2^-22 per value.
    let tol = nmse_threshold(Op::MlaLatent, QuantFormat::F32, Variant::Plain);
    for (q_lora, mode) in [
        (24, RopeMode::Normal),
        (0, RopeMode::Neox),
        (40, RopeMode::Neox),
    ] {
        let (e_q, e_c) = latent_case(ctx, q_lora, mode, &[0, 5, 17, 40, 33]);
        eprintln!("mla_latent q_lora {q_lora} {mode:?}: cq nmse {e_q:e}, cache nmse {e_c:e}");
        assert!(
            e_q < tol && e_c < tol,
            "q_lora {q_lora} {mode:?}: {e_q:e} / {e_c:e}"
        );
    }
}

/// How a case runs the attention: the `attn_mla` kernel in `splits` parts, or its GEMM
/// form.
#[derive(Debug, Clone, Copy)]
enum Path {
    Kernel(usize),
    /// The GEMM form with score blocks of at most this many bytes.
    Gemm(u64),
}

/// Fills `n_pos` latent rows on the CPU and the GPU, attends `q_pos` along `path`; returns
/// the NMSE of the GPU against `mla_attention`.
fn attn_case(ctx: &GpuContext, mode: RopeMode, n_pos: usize, q_pos: &[usize], path: Path) -> f64 {
    let splits = match path {
        Path::Kernel(s) => s,
        Path::Gemm(_) => 1,
    };
    let s = shape(q_pos.len(), 0, mode);
    let (n, h, w, rd) = (s.n_tokens, s.n_heads, s.width(), s.rope_dim);
    let mut r = rng((n_pos * 3 + splits + q_pos.len()) as u64);
    let n_blocks = n_pos.div_ceil(16) + 1;
    let table = reversed_table(n_pos.div_ceil(16));
    let mut cache = PagedLatent::new(
        LatentLayout {
            block_size: 16,
            width: w,
        },
        n_blocks,
    )
    .expect("latent");
    for p in 0..n_pos {
        cache
            .write(&table, p, &random_vec(&mut r, w))
            .expect("write");
    }
    let mut words = vec![0u32; n_blocks * 16 * w / 2];
    let mut row = vec![0.0; w];
    for p in 0..n_pos {
        cache.read(&table, p, &mut row).expect("read");
        let slot = table[p / 16] as usize * 16 + p % 16;
        for (i, pair) in row.chunks_exact(2).enumerate() {
            let (a, b) = (f16::from_f32(pair[0]), f16::from_f32(pair[1]));
            words[slot * w / 2 + i] = u32::from(a.to_bits()) | u32::from(b.to_bits()) << 16;
        }
    }
    // Large queries sharpen the softmax, so partial maxima differ between splits.
    let q_abs: Vec<f32> = random_vec(&mut r, n * h * s.rank)
        .iter()
        .map(|v| v * 3.0)
        .collect();
    let q_pe: Vec<f32> = random_vec(&mut r, n * h * rd)
        .iter()
        .map(|v| v * 3.0)
        .collect();
    let rope = RopeConfig::new(rd, 10000.0, mode);

    // CPU: [q̃ ‖ RoPE(q_pe)] per head.
    let mut pe = q_pe.clone();
    RopeTable::new(&rope, rd)
        .expect("rope")
        .apply(&mut pe, q_pos, h, rd);
    let mut q = Vec::with_capacity(n * h * w);
    for i in 0..n * h {
        q.extend_from_slice(&q_abs[i * s.rank..(i + 1) * s.rank]);
        q.extend_from_slice(&pe[i * rd..(i + 1) * rd]);
    }
    let mut want = vec![0.0; n * h * s.rank];
    mla_attention(&q, q_pos, &cache, &table, h, s.rank, s.scale, &mut want).expect("cpu");

    let t_off = 2 * n;
    let mut meta: Vec<u32> = q_pos
        .iter()
        .flat_map(|&p| [p as u32, t_off as u32])
        .collect();
    meta.extend_from_slice(&table);
    let cache_gpu = u32_buf(ctx, &words);
    let (qa, qp) = (
        upload_f32(ctx, &q_abs).expect("q"),
        upload_f32(ctx, &q_pe).expect("pe"),
    );
    let cs = upload_f32(ctx, &cs_rows(&rope, q_pos)).expect("cs");
    let mb = u32_buf(ctx, &meta);
    let ob = upload_f32(ctx, &guarded(want.len())).expect("out");
    let part = storage_f32(ctx, mla_partial_len(&s, splits)).expect("part");
    let mut enc = StepEncoder::new(ctx, "t");
    let io = MlaAttnIo {
        q_abs: &qa,
        q_pe: &qp,
        cs: Span::whole(&cs),
        cache: &cache_gpu,
        meta: Span::whole(&mb),
        part: Some(&part),
        out: Span::new(&ob, GUARD),
    };
    let max_keys = q_pos.iter().max().map_or(1, |p| p + 1);
    match path {
        Path::Kernel(splits) => {
            record_attn_mla(&mut enc, &s, splits, max_keys, &io).expect("attn_mla");
            let want_dispatches = if splits == 1 { 1 } else { 2 };
            assert_eq!(
                enc.dispatch_count(),
                want_dispatches,
                "attn_mla (+ combine)"
            );
        }
        Path::Gemm(bytes) => {
            record_attn_mla_gemm_blocks(&mut enc, &s, max_keys, &io, bytes).expect("gemm form");
            // Pack and dense rows, then GEMM, softmax, GEMM per block of whole tokens.
            let n_pad = max_keys.div_ceil(MLA_GEMM_KEY_ALIGN) * MLA_GEMM_KEY_ALIGN;
            let per_block = (bytes as usize / (h * n_pad * 4)).min(n);
            let blocks = n.div_ceil(per_block) as u32;
            assert_eq!(enc.dispatch_count(), 2 + 3 * blocks, "{blocks} blocks");
        }
    }
    enc.submit().expect("submit");
    let all = read_f32(ctx, &ob, 0, want.len() + 2 * GUARD).expect("read");
    assert_sentinels(
        &all,
        (0..GUARD).chain(GUARD + want.len()..all.len()),
        "attn_mla out",
    );
    nmse(&all[GUARD..GUARD + want.len()], &want)
}

#[test]
fn attn_mla_matches_cpu_mla_attention() {
    let Some(ctx) = testkit::ctx() else { return };
    let tol = nmse_threshold(Op::AttnMla, QuantFormat::F32, Variant::Plain);
    let cases: [(RopeMode, usize, &[usize], usize); 5] = [
        (RopeMode::Normal, 1, &[0], 1),
        (RopeMode::Normal, 70, &[69], 1),
        (RopeMode::Neox, 150, &[149, 3, 77], 1),
        (RopeMode::Normal, 700, &[699], 4),
        (RopeMode::Neox, 600, &[599, 300, 10], 7),
    ];
    for (mode, n_pos, q_pos, splits) in cases {
        let e = attn_case(ctx, mode, n_pos, q_pos, Path::Kernel(splits));
        eprintln!("attn_mla {mode:?} {n_pos} keys, queries {q_pos:?}, {splits} splits: nmse {e:e}");
        assert!(e < tol, "{mode:?} {n_pos} keys {splits} splits: nmse {e:e}");
    }
}

#[test]
fn attn_mla_gemm_matches_cpu_mla_attention() {
    let Some(ctx) = testkit::ctx() else { return };
    // The tensor-core GEMM (where the device has one) multiplies in f16.
    let tol = nmse_threshold(Op::AttnMla, QuantFormat::F16, ctx.default_variant(Op::Gemm));
    let chunk: Vec<usize> = (0..100).collect();
    let tail: Vec<usize> = (61..131).collect();
    let cases: [(RopeMode, usize, &[usize]); 5] = [
        (RopeMode::Normal, 1, &[0]),
        (RopeMode::Neox, 150, &[149, 3, 77]),
        // A whole prompt from position 0, then a chunk after a 61-token prefix: positions
        // past the last key (padding to whole tiles) and past each token's own are masked.
        (RopeMode::Normal, 100, &chunk),
        (RopeMode::Neox, 131, &tail),
        (RopeMode::Normal, 64, &[63, 0, 31]),
    ];
    for (mode, n_pos, q_pos) in cases {
        let e = attn_case(
            ctx,
            mode,
            n_pos,
            q_pos,
            Path::Gemm(MLA_GEMM_MAX_SCORE_BYTES),
        );
        eprintln!(
            "attn_mla_gemm {mode:?} {n_pos} keys, {} queries: nmse {e:e}",
            q_pos.len()
        );
        assert!(e < tol, "{mode:?} {n_pos} keys: nmse {e:e}");
    }
    // Score blocks of 7 tokens (5 heads x 192 padded positions), the last one partial.
    let bytes = 7 * 5 * 192 * 4;
    let e = attn_case(ctx, RopeMode::Normal, 131, &tail, Path::Gemm(bytes));
    eprintln!("attn_mla_gemm in blocks of 7 tokens: nmse {e:e}");
    assert!(e < tol, "blocks: nmse {e:e}");
}

/// Every input and output of an attention call in one 4096-float buffer (for the shape
/// checks, which refuse before anything is dispatched).
fn one_buffer_io(buf: &marlin_gpu::PooledBuffer) -> MlaAttnIo<'_> {
    MlaAttnIo {
        q_abs: buf,
        q_pe: buf,
        cs: Span::whole(buf),
        cache: buf,
        meta: Span::whole(buf),
        part: None,
        out: Span::whole(buf),
    }
}

#[test]
fn attn_mla_gemm_rejects_bad_shapes() {
    let Some(ctx) = testkit::ctx() else { return };
    let buf = storage_f32(ctx, 4096).expect("buf");
    let io = one_buffer_io(&buf);
    let mut enc = StepEncoder::new(ctx, "t");
    let ok = shape(4, 0, RopeMode::Normal);
    assert!(
        record_attn_mla_gemm(&mut enc, &ok, 0, &io).is_err(),
        "no keys"
    );
    // Queries of 4 tokens x 5 heads x 32 values need 640 floats; 4096 hold them, but not
    // 200 tokens' worth.
    let many = shape(200, 0, RopeMode::Normal);
    assert!(
        record_attn_mla_gemm(&mut enc, &many, 8, &io).is_err(),
        "short q_abs"
    );
    assert!(
        record_attn_mla_gemm_blocks(&mut enc, &ok, 8, &io, 100).is_err(),
        "not one token's scores in a block"
    );
    let odd = MlaShape { rope_dim: 6, ..ok };
    assert!(
        record_attn_mla_gemm(&mut enc, &odd, 8, &io).is_err(),
        "latent rows of 38 values"
    );
    assert_eq!(enc.dispatch_count(), 0);
}

#[test]
fn attn_mla_rejects_bad_shapes() {
    let Some(ctx) = testkit::ctx() else { return };
    let buf = storage_f32(ctx, 4096).expect("buf");
    let io = one_buffer_io(&buf);
    let mut enc = StepEncoder::new(ctx, "t");
    let odd = MlaShape {
        rank: 31,
        ..shape(1, 0, RopeMode::Normal)
    };
    assert!(
        record_attn_mla(&mut enc, &odd, 1, 4, &io).is_err(),
        "odd rank"
    );
    let wide = MlaShape {
        rank: 1024,
        ..shape(1, 0, RopeMode::Normal)
    };
    assert!(
        record_attn_mla(&mut enc, &wide, 1, 4, &io).is_err(),
        "rank over the limit"
    );
    let ok = shape(1, 0, RopeMode::Normal);
    assert!(
        record_attn_mla(&mut enc, &ok, 2, 4, &io).is_err(),
        "split without partials"
    );
    assert!(
        record_attn_mla(&mut enc, &ok, 0, 4, &io).is_err(),
        "zero splits"
    );
    assert_eq!(enc.dispatch_count(), 0);
}
