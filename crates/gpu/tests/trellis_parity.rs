//! Parity of the trellis matmuls (every width × codebook, GEMV / gemv_multi / GEMM, every
//! variant the device runs) against core's dequantization (`W = diag(svh) H_n Q H_k
//! diag(suh)`) times the f64 reference, on random bitstreams with strided, guarded outputs
//! and chunked uploads. Runs on lavapipe (see testkit for the skip rule).

mod testkit;

use std::sync::Arc;

use marlin_core::{reference, QTensor, QuantFormat, TensorData};
use marlin_gpu::{
    read_f32, record_matmul_op, upload_f32, Error, GpuContext, GpuWeight, KernelKey, MatmulIo, Op,
    StepEncoder, Variant,
};
use testkit::{assert_sentinels, guarded, nmse, random_trellis, random_vec, rng, GUARD};

fn variants(ctx: &GpuContext, op: Op, format: QuantFormat) -> Vec<Variant> {
    Variant::ALL
        .into_iter()
        .filter(|&variant| {
            ctx.runs(marlin_gpu::KernelKey {
                op,
                format,
                variant,
            })
        })
        .collect()
}

/// Run `op`/`variant` on `t` for `n_tokens` tokens into a guarded, strided output and
/// return the NMSE against the reference.
fn run(
    ctx: &GpuContext,
    t: &QTensor,
    w: &GpuWeight,
    op: Op,
    variant: Variant,
    n_tokens: usize,
) -> f64 {
    let x = random_vec(
        &mut rng(w.rows as u64 * 7 + n_tokens as u64),
        n_tokens * w.cols,
    );
    run_on(ctx, t, w, op, variant, n_tokens, &x)
}

/// [`run`] on the activations `x`.
fn run_on(
    ctx: &GpuContext,
    t: &QTensor,
    w: &GpuWeight,
    op: Op,
    variant: Variant,
    n_tokens: usize,
    x: &[f32],
) -> f64 {
    let (rows, cols) = (w.rows, w.cols);
    let dense = t.to_f32().expect("dequantize");
    let want = reference::matmul(&dense, x, rows, cols, n_tokens);
    // x starts 4 floats in; rows of out are `stride` apart after a guard.
    let mut xh = vec![0.0f32; 4];
    xh.extend_from_slice(x);
    let xb = upload_f32(ctx, &xh).expect("x");
    let stride = rows + if n_tokens > 1 { 3 } else { 0 };
    let len = (n_tokens - 1) * stride + rows;
    let ob = upload_f32(ctx, &guarded(len)).expect("out");
    let io = MatmulIo {
        x: &xb,
        x_offset: 4,
        out: &ob,
        out_offset: GUARD,
        out_stride: Some(stride),
        n_tokens,
    };
    let mut enc = StepEncoder::new(ctx, "trellis");
    record_matmul_op(&mut enc, w, &io, op, variant).expect("record");
    enc.submit().expect("submit");
    let all = read_f32(ctx, &ob, 0, len + 2 * GUARD).expect("read");
    let mut guards: Vec<usize> = (0..GUARD).chain(GUARD + len..all.len()).collect();
    let mut got = Vec::with_capacity(n_tokens * rows);
    for tk in 0..n_tokens {
        let at = GUARD + tk * stride;
        got.extend_from_slice(&all[at..at + rows]);
        if tk + 1 < n_tokens {
            guards.extend(at + rows..at + stride);
        }
    }
    assert_sentinels(&all, guards, &format!("{} {op:?}", t.format));
    nmse(&got, &want)
}

#[test]
fn trellis_matmuls_match_the_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    // (rows, cols): a lone tile, an odd number of tiles per 32-wide unit (80 = 5 tiles),
    // rows not a multiple of the GEMV's 16-row workgroup, 128-blocks on both sides.
    let shapes = [(16, 16), (48, 80), (80, 128), (128, 256)];
    for (i, format) in QuantFormat::trellis_all().into_iter().enumerate() {
        let (rows, cols) = shapes[i % shapes.len()];
        let t = random_trellis(format, rows, cols, 40 + i as u64);
        let w = GpuWeight::upload(ctx, &t).expect("upload");
        assert!(w.trellis.is_some(), "{format}");
        for (op, tokens) in [
            (Op::Gemv, &[1][..]),
            (Op::GemvMulti, &[2, 5, 11]),
            (Op::Gemm, &[3, 20]),
        ] {
            let vs = variants(ctx, op, format);
            assert!(
                vs.contains(&Variant::Plain),
                "{op:?} {format}: no plain kernel"
            );
            for variant in vs {
                for &n in tokens {
                    let e = run(ctx, &t, &w, op, variant, n);
                    // The f16 GEMM rounds weights and activations to f16.
                    let limit = if variant == Variant::F16 || variant.is_coop() {
                        1e-5
                    } else {
                        1e-10
                    };
                    eprintln!("{format} [{rows}x{cols}] {op:?} {variant:?} n {n}: nmse {e:e}");
                    assert!(
                        e < limit,
                        "{format} [{rows}x{cols}] {op:?} {variant:?} n {n}: nmse {e:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn chunked_trellis_weights_match() {
    let Some(ctx) = testkit::ctx() else { return };
    let format = QuantFormat::from_name("trellis3").expect("name");
    let (rows, cols) = (96, 64);
    let t = random_trellis(format, rows, cols, 7);
    // One tile row of [16, 64] is 4 tiles of 96 bytes: chunks of two tile rows.
    let w = GpuWeight::upload_chunked(ctx, &t, 2 * 4 * 96).expect("upload");
    assert_eq!(w.chunks.len(), 3);
    assert_eq!(w.chunks[1].rows, 32..64);
    for (op, n) in [(Op::Gemv, 1), (Op::GemvMulti, 4), (Op::Gemm, 9)] {
        let e = run(ctx, &t, &w, op, Variant::Plain, n);
        assert!(e < 1e-10, "{op:?} chunked: nmse {e:e}");
    }
    if variants(ctx, Op::Gemv, format).contains(&Variant::F16) {
        let e = run(ctx, &t, &w, Op::Gemv, Variant::F16, 1);
        assert!(e < 1e-5, "tile GEMV chunked: nmse {e:e}");
    }
}

/// The f16 tile GEMV at the column counts where a tile row has more than 16 threads (its
/// two-stage row sums: 48 tiles -> 32 threads with uneven shares, 256 tiles -> one tile
/// row per thread group), with activations spanning six orders of magnitude (the per-tile
/// power-of-two scaling keeps them inside f16), with the input side in the kernel where
/// the device runs `gemv_hadamard`.
#[test]
fn trellis_tile_gemv_matches_on_wide_rows() {
    let Some(ctx) = testkit::ctx() else { return };
    for (name, rows, cols) in [
        ("trellis3", 48, 768),
        ("trellis4_mul1", 32, 4096),
        ("trellis2_mcg", 64, 512),
        ("trellis3", 256, 2048),
    ] {
        let format = QuantFormat::from_name(name).expect("name");
        if !variants(ctx, Op::Gemv, format).contains(&Variant::F16) {
            return;
        }
        let t = random_trellis(format, rows, cols, 11);
        let w = GpuWeight::upload(ctx, &t).expect("upload");
        // Each 128-column Hadamard block at its own scale, 1e-3 to 1e3.
        let x: Vec<f32> = random_vec(&mut rng(5), cols)
            .into_iter()
            .enumerate()
            .map(|(i, v)| v * 10f32.powi((i / 128) as i32 % 7 - 3))
            .collect();
        let e = run_on(ctx, &t, &w, Op::Gemv, Variant::F16, 1, &x);
        eprintln!("{name} [{rows}x{cols}] tile GEMV: nmse {e:e}");
        assert!(e < 1e-5, "{name} [{rows}x{cols}] tile GEMV: nmse {e:e}");
        // Where the device has subgroups of 8 or more, the GEMV applies the input side
        // itself (gemv_hadamard): two dispatches, not three.
        let fused = ctx.summary.limits.subgroup_min_size >= 8
            && ctx.runs(KernelKey {
                op: Op::GemvHadamard,
                format,
                variant: Variant::F16,
            });
        let want = if fused { 2 } else { 3 };
        let xb = upload_f32(ctx, &x).expect("x");
        let ob = upload_f32(ctx, &vec![0.0; rows]).expect("out");
        let mut enc = StepEncoder::new(ctx, "trellis dispatches");
        let io = MatmulIo::new(&xb, &ob, 1);
        record_matmul_op(&mut enc, &w, &io, Op::Gemv, Variant::F16).expect("record");
        eprintln!(
            "{name} [{rows}x{cols}] GEMV: {} dispatches",
            enc.dispatch_count()
        );
        assert_eq!(enc.dispatch_count(), want, "{name}");
    }
}

#[test]
fn trellis_uploads_refuse_what_they_cannot_run() {
    let Some(ctx) = testkit::ctx() else { return };
    let format = QuantFormat::from_name("trellis2").expect("name");
    // Stacked experts [e, n, k]: no GPU kernel applies per-expert sides yet.
    let one = random_trellis(format, 16, 32, 1);
    let mut two = one.bytes().to_vec();
    two.extend_from_slice(one.bytes());
    let stacked =
        QTensor::new(format, vec![2, 16, 32], TensorData::Owned(Arc::new(two))).expect("stacked");
    assert!(matches!(
        GpuWeight::upload(ctx, &stacked),
        Err(Error::Unsupported { .. })
    ));
    // Bytes that do not match the shape.
    let short = &one.bytes()[..one.bytes().len() - 4];
    let e = GpuWeight::from_bytes(ctx, format, 16, 32, short, 1 << 20).expect_err("short");
    assert!(e.to_string().contains("needs"), "{e}");
    // Rows not a multiple of 16.
    let e = GpuWeight::from_bytes(ctx, format, 8, 32, one.bytes(), 1 << 20).expect_err("rows");
    assert!(e.to_string().contains("multiples of 16"), "{e}");
}
