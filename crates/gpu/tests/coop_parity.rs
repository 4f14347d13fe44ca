//! Parity of the tensor-core GEMM (every coop token tile, and `Variant::Coop` picking its
//! tile by token count) on real cooperative matrices, for every GEMM format but trellis
//! (trellis_parity.rs runs every variant), against the f64 reference on dequantized
//! weights with guarded, strided outputs. Opens the first adapter that can run the coop
//! GEMM (16x16x16 f16 -> f32, subgroups of 32); without one (lavapipe) every test here
//! reports itself skipped and passes. coop_emulated.rs checks the same bodies on lavapipe.
//! Split K: the launcher's own splits on long-K shapes, explicit split counts through the
//! kernel and `gemm_splitk_reduce`, and (with `MARLIN_GPU_COOP_SPLITK=N`) every case here.

mod testkit;

use std::sync::OnceLock;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::{coop_splits, gemm_tile, gemm_variant_for};
use marlin_gpu::{
    list_adapters, read_f32, record_gemm_splitk_reduce, record_matmul_op, upload_f32,
    DeviceSelector, GpuContext, GpuWeight, KernelKey, MatmulIo, Op, Span, SplitkReduceIo,
    StepEncoder, Variant, MATMUL_FORMATS,
};
use testkit::{assert_sentinels, guarded, nmse, random_vec, random_weight, rng, GUARD};

/// Token counts: below, at and across every tile (16, 32, 64), one and a partial second
/// 64-token tile.
const TOKENS: [usize; 6] = [1, 5, 17, 33, 64, 100];
/// The explicit tiles, then the launcher's choice.
const VARIANTS: [Variant; 4] = [
    Variant::CoopT16,
    Variant::CoopT32,
    Variant::CoopT128,
    Variant::Coop,
];

/// The first adapter that runs the coop GEMM, opened once per test binary.
fn coop_ctx(test: &str) -> Option<&'static GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    let ctx = CTX
        .get_or_init(|| {
            let a = list_adapters().into_iter().find(|a| a.coop_gemm())?;
            GpuContext::new(DeviceSelector::GpuIndex(a.index))
                .ok()
                .flatten()
        })
        .as_ref();
    if ctx.is_none() {
        eprintln!("{test}: SKIPPED (no adapter with cooperative matrices 16x16x16 f16->f32)");
    }
    ctx
}

/// (rows, cols) for `format`: rows never a multiple of any row tile (32, 64, 128), one
/// shape past a full 128-row tile; cols a multiple of 32 but not of 128 where the format
/// allows it (whole 256-element blocks for K-quants, any multiple of 4 for floats).
fn shapes(format: QuantFormat) -> Vec<(usize, usize)> {
    match format.block_elems() {
        1 => vec![(37, 100), (131, 160)],
        256 if !format.is_marlin() => vec![(37, 256), (131, 768)],
        _ if format.is_marlin() => vec![(37, 96), (131, 576)],
        _ => vec![(37, 160), (131, 544)],
    }
}

/// `variant` of the GEMM on a random `[rows, cols]` weight in `format` for `n` tokens:
/// x at offset 4, outputs `rows + 3` apart between guards. Returns the NMSE.
fn run(
    ctx: &GpuContext,
    format: QuantFormat,
    variant: Variant,
    (rows, cols): (usize, usize),
    n: usize,
) -> f64 {
    let ran = gemm_variant_for(variant, rows, n);
    let splits = coop_splits(ran, rows, cols, n);
    let what = format!(
        "gemm_{format} {} (ran {}, {splits} splits) [{rows}x{cols}] n={n}",
        variant.name(),
        ran.name()
    );
    let seed = (rows * 131 + cols * 7 + n) as u64;
    let t = random_weight(format, rows, cols, seed);
    let x = random_vec(&mut rng(seed ^ 0xC00B), n * cols);
    let want = reference::matmul(&t.to_f32().expect("dequantize"), &x, rows, cols, n);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let mut xh = vec![7.5f32; 4];
    xh.extend_from_slice(&x);
    let xb = upload_f32(ctx, &xh).expect("upload x");
    let stride = rows + 3;
    let out_len = (n - 1) * stride + rows;
    let ob = upload_f32(ctx, &guarded(out_len)).expect("upload out");
    let io = MatmulIo {
        x: &xb,
        x_offset: 4,
        out: &ob,
        out_offset: GUARD,
        out_stride: Some(stride),
        n_tokens: n,
    };
    let mut enc = StepEncoder::new(ctx, "coop-parity");
    record_matmul_op(&mut enc, &w, &io, Op::Gemm, variant).expect("record");
    // Split K adds the reduce.
    let per_chunk = if splits > 1 { 2 } else { 1 };
    assert_eq!(
        enc.dispatch_count() as usize,
        w.chunks.len() * per_chunk,
        "{what}"
    );
    enc.submit().expect("submit");
    let all = read_f32(ctx, &ob, 0, out_len + 2 * GUARD).expect("read");
    assert_sentinels(&all, (0..GUARD).chain(GUARD + out_len..all.len()), &what);
    let mut got = Vec::with_capacity(n * rows);
    for tok in 0..n {
        let base = GUARD + tok * stride;
        got.extend_from_slice(&all[base..base + rows]);
        if tok + 1 < n {
            assert_sentinels(&all, base + rows..base + stride, &what);
        }
    }
    let e = nmse(&got, &want);
    eprintln!("{what}: nmse {e:e}");
    // f16 weights and activations, f32 sums: the F16 / Coop row of the NMSE table.
    assert!(e <= 2e-6, "{what}: NMSE {e:e} > 2e-6");
    e
}

/// Every tile and token count on every shape of `formats`.
fn check(test: &str, formats: impl IntoIterator<Item = QuantFormat>) {
    let Some(ctx) = coop_ctx(test) else { return };
    let mut cases = 0;
    for format in formats {
        let key = KernelKey {
            op: Op::Gemm,
            format,
            variant: Variant::Coop,
        };
        assert!(
            ctx.runs(key),
            "gemm_{format}: no coop kernel on a coop device"
        );
        for variant in VARIANTS {
            for shape in shapes(format) {
                for n in TOKENS {
                    run(ctx, format, variant, shape, n);
                    cases += 1;
                }
            }
        }
    }
    eprintln!("{test}: {cases} cases passed on {}", ctx.summary.name);
}

#[test]
fn coop_gemm_ggml_formats_match() {
    let ggml = MATMUL_FORMATS
        .iter()
        .copied()
        .filter(|f| !f.is_marlin() && !f.is_trellis());
    check("coop_gemm_ggml_formats_match", ggml);
}

#[test]
fn coop_gemm_marlin_formats_match() {
    check("coop_gemm_marlin_formats_match", QuantFormat::marlin_all());
}

/// A weight split into row chunks: each chunk's dispatch covers its own rows.
#[test]
fn coop_gemm_chunked_weights_match() {
    let Some(ctx) = coop_ctx("coop_gemm_chunked_weights_match") else {
        return;
    };
    let format = QuantFormat::Q4_0;
    let (rows, cols, n) = (300, 256, 40);
    let t = random_weight(format, rows, cols, 9);
    let limit = (format.row_bytes(cols).expect("row bytes") * 96) as u64;
    let w = GpuWeight::upload_chunked(ctx, &t, limit).expect("upload");
    assert!(w.chunks.len() >= 3, "{} chunks", w.chunks.len());
    let x = random_vec(&mut rng(10), n * cols);
    let want = reference::matmul(&t.to_f32().expect("dequantize"), &x, rows, cols, n);
    let xb = upload_f32(ctx, &x).expect("x");
    let ob = upload_f32(ctx, &vec![0.0; n * rows]).expect("out");
    let mut enc = StepEncoder::new(ctx, "coop-chunks");
    let io = MatmulIo::new(&xb, &ob, n);
    record_matmul_op(&mut enc, &w, &io, Op::Gemm, Variant::Coop).expect("record");
    enc.submit().expect("submit");
    let got = read_f32(ctx, &ob, 0, n * rows).expect("read");
    let e = nmse(&got, &want);
    assert!(e <= 2e-6, "chunked coop gemm: NMSE {e:e}");
}

/// Long K (4096: 16, 32 or 64 chunks by tile) on few rows, for every tile and token count.
/// Split-K is off by default: with `MARLIN_GPU_COOP_SPLITK=auto` (or `=N`) the launcher
/// splits K here (asserted through the dispatch count in `run`).
#[test]
fn coop_gemm_splitk_launcher_matches() {
    let Some(ctx) = coop_ctx("coop_gemm_splitk_launcher_matches") else {
        return;
    };
    let fp4 = QuantFormat::Fp4(marlin_core::Group::G128);
    let mut split = 0;
    for format in [
        QuantFormat::Q4_0,
        QuantFormat::Q4_K,
        QuantFormat::Q6_K,
        QuantFormat::F16,
        fp4,
    ] {
        for variant in VARIANTS {
            for n in TOKENS {
                run(ctx, format, variant, (37, 4096), n);
                split +=
                    usize::from(coop_splits(gemm_variant_for(variant, 37, n), 37, 4096, n) > 1);
            }
        }
    }
    if std::env::var_os("MARLIN_GPU_COOP_SPLITK").is_some_and(|v| v != "1") {
        assert!(split > 0, "no case split K");
    } else {
        assert_eq!(split, 0, "split-K is off by default");
    }
}

/// The kernel run with explicit split counts (grid z = S, uneven and empty splits among
/// them) into guarded scratch, then `gemm_splitk_reduce` into a strided output at a row
/// offset, as the launcher records them.
#[test]
fn coop_gemm_explicit_splits_match() {
    let Some(ctx) = coop_ctx("coop_gemm_explicit_splits_match") else {
        return;
    };
    let (format, rows, cols) = (QuantFormat::Q4_0, 131, 1024);
    let t = random_weight(format, rows, cols, 77);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let dense = t.to_f32().expect("dequantize");
    for variant in [Variant::CoopT16, Variant::CoopT32, Variant::Coop] {
        for (n, splits) in [(1, 2), (5, 3), (17, 7), (33, 4), (64, 16)] {
            let what = format!("gemm_{format} {} n={n} splits={splits}", variant.name());
            let x = random_vec(&mut rng((n * 11 + splits) as u64), n * cols);
            let want = reference::matmul(&dense, &x, rows, cols, n);
            let xb = upload_f32(ctx, &x).expect("x");
            let pb = upload_f32(ctx, &guarded(splits * n * rows)).expect("partials");
            let (stride, row_offset) = (rows + 5, 3);
            let out_len = (n - 1) * stride + row_offset + rows;
            let ob = upload_f32(ctx, &guarded(out_len)).expect("out");
            let key = KernelKey {
                op: Op::Gemm,
                format,
                variant,
            };
            let chunk = &w.chunks[0];
            let params: [u32; 8] = [
                rows as u32,
                cols as u32,
                n as u32,
                0,
                rows as u32,
                chunk.meta_offset_words,
                0,
                GUARD as u32,
            ];
            let (tm, tn) = gemm_tile(variant);
            let groups = [
                rows.div_ceil(tm as usize) as u32,
                n.div_ceil(tn as usize) as u32,
                splits as u32,
            ];
            let mut enc = StepEncoder::new(ctx, "coop-splits");
            let bufs = [&chunk.buffer, &*xb, &*pb];
            enc.dispatch(key, bytemuck::cast_slice(&params), &bufs, groups)
                .expect("gemm");
            let io = SplitkReduceIo {
                partials: Span::new(&pb, GUARD),
                out: Span::new(&ob, GUARD),
                out_stride: stride,
                row_offset,
                rows,
                n_tokens: n,
                splits,
            };
            record_gemm_splitk_reduce(&mut enc, &io).expect("reduce");
            enc.submit().expect("submit");
            let parts = read_f32(ctx, &pb, 0, splits * n * rows + 2 * GUARD).expect("read");
            let tail = GUARD + splits * n * rows..parts.len();
            assert_sentinels(&parts, (0..GUARD).chain(tail), &what);
            let all = read_f32(ctx, &ob, 0, out_len + 2 * GUARD).expect("read");
            let mut got = Vec::with_capacity(n * rows);
            let mut data = vec![false; all.len()];
            for tok in 0..n {
                let base = GUARD + row_offset + tok * stride;
                got.extend_from_slice(&all[base..base + rows]);
                data[base..base + rows].fill(true);
            }
            assert_sentinels(&all, (0..all.len()).filter(|&i| !data[i]), &what);
            let e = nmse(&got, &want);
            eprintln!("{what}: nmse {e:e}");
            assert!(e <= 2e-6, "{what}: NMSE {e:e} > 2e-6");
        }
    }
}

/// A row-chunked weight with long K: every chunk splits and its reduce writes the chunk's
/// rows (row offset) of the shared output.
#[test]
fn coop_gemm_chunked_weights_split_match() {
    let Some(ctx) = coop_ctx("coop_gemm_chunked_weights_split_match") else {
        return;
    };
    let format = QuantFormat::Q4_0;
    let (rows, cols, n) = (300, 4096, 24);
    let t = random_weight(format, rows, cols, 19);
    let limit = (format.row_bytes(cols).expect("row bytes") * 96) as u64;
    let w = GpuWeight::upload_chunked(ctx, &t, limit).expect("upload");
    assert!(w.chunks.len() >= 3, "{} chunks", w.chunks.len());
    let x = random_vec(&mut rng(20), n * cols);
    let want = reference::matmul(&t.to_f32().expect("dequantize"), &x, rows, cols, n);
    let xb = upload_f32(ctx, &x).expect("x");
    let ob = upload_f32(ctx, &vec![0.0; n * rows]).expect("out");
    let mut enc = StepEncoder::new(ctx, "coop-chunk-splits");
    let io = MatmulIo::new(&xb, &ob, n);
    record_matmul_op(&mut enc, &w, &io, Op::Gemm, Variant::Coop).expect("record");
    let splits: Vec<usize> = w
        .chunks
        .iter()
        .map(|c| {
            let r = c.rows.len();
            coop_splits(gemm_variant_for(Variant::Coop, rows, n), r, cols, n)
        })
        .collect();
    let want_dispatches: usize = splits.iter().map(|&s| if s > 1 { 2 } else { 1 }).sum();
    assert_eq!(enc.dispatch_count() as usize, want_dispatches, "{splits:?}");
    // Split-K is off by default; `MARLIN_GPU_COOP_SPLITK=auto` (or N > 1) splits every chunk.
    if std::env::var("MARLIN_GPU_COOP_SPLITK").is_ok_and(|v| v.trim() != "1") {
        assert!(splits.iter().all(|&s| s > 1), "{splits:?}");
    }
    enc.submit().expect("submit");
    let got = read_f32(ctx, &ob, 0, n * rows).expect("read");
    let e = nmse(&got, &want);
    assert!(e <= 2e-6, "chunked split-K coop gemm: NMSE {e:e}");
}
