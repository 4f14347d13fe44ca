//! Parity of the tensor-core GEMM (every coop token tile, and `Variant::Coop` picking its
//! tile by token count) on real cooperative matrices, for every GEMM format but trellis
//! (trellis_parity.rs runs every variant), against the f64 reference on dequantized
//! weights with guarded, strided outputs. Opens the first adapter that can run the coop
//! GEMM (16x16x16 f16 -> f32, subgroups of 32); without one (lavapipe) every test here
//! reports itself skipped and passes. coop_emulated.rs checks the same bodies on lavapipe.

mod testkit;

use std::sync::OnceLock;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::gemm_variant_for;
use marlin_gpu::{
    list_adapters, read_f32, record_matmul_op, upload_f32, DeviceSelector, GpuContext, GpuWeight,
    KernelKey, MatmulIo, Op, StepEncoder, Variant, MATMUL_FORMATS,
};
use testkit::{assert_sentinels, guarded, nmse, random_vec, random_weight, rng, GUARD};

/// Token counts: below, at and across every tile (16, 32, 64), one and a partial second
/// 64-token tile.
const TOKENS: [usize; 6] = [1, 5, 17, 33, 64, 100];
/// The explicit tiles, then the launcher's choice.
const VARIANTS: [Variant; 3] = [Variant::CoopT16, Variant::CoopT32, Variant::Coop];

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
    let what = format!(
        "gemm_{format} {} (ran {}) [{rows}x{cols}] n={n}",
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
    assert_eq!(enc.dispatch_count() as usize, w.chunks.len(), "{what}");
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
