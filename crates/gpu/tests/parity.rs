//! Parity of every GPU matmul kernel (op × format × variant × edge shapes) against the core
//! f64 reference on dequantized weights, with guard regions around every output. Runs on
//! the software Vulkan adapter (lavapipe); see testkit for the skip rule.

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::{coop_splits, gemm_variant_for};
use marlin_gpu::{
    read_f32, record_matmul_op, upload_f32, GpuContext, GpuWeight, MatmulIo, Op, StepEncoder,
    Variant, MATMUL_FORMATS,
};
use testkit::{
    assert_sentinels, guarded, nmse, nmse_threshold, random_vec, random_weight, rng, GUARD,
};

/// (rows, cols): rows never a multiple of the 4-row GEMV group or the 64-row GEMM tile.
const SHAPES: &[(usize, usize)] = &[(37, 256), (5, 512), (67, 2816)];
/// A GEMV shape past the Dp4a GEMV's 512-unit x fill (a second, partial fill).
const LONG_GEMV: (usize, usize) = (5, 16640);
/// Extra shapes for float formats, whose rows need not be whole 32-element units.
const FLOAT_SHAPES: &[(usize, usize)] = &[(9, 100), (3, 4)];
const GEMM_TOKENS: &[usize] = &[2, 7, 33];
/// gemv_multi token counts: 8 per pass, so 11 and 17 run partial second and third passes.
const MULTI_TOKENS: &[usize] = &[2, 3, 5, 8, 11, 17];

struct Case {
    op: Op,
    format: QuantFormat,
    variant: Variant,
    rows: usize,
    cols: usize,
    n_tokens: usize,
    /// Floats of gap between tokens in the output (checked for sentinels).
    stride_pad: usize,
    /// Largest weight chunk; `None` = the device limit.
    chunk_limit: Option<u64>,
}

fn run(ctx: &GpuContext, c: &Case) {
    let what = format!(
        "{}_{} {} [{}x{}] n={} pad={} chunk={:?}",
        c.op,
        c.format,
        c.variant.name(),
        c.rows,
        c.cols,
        c.n_tokens,
        c.stride_pad,
        c.chunk_limit
    );
    let seed = (c.rows * 131 + c.cols * 7 + c.n_tokens) as u64;
    let t = random_weight(c.format, c.rows, c.cols, seed);
    let x = random_vec(&mut rng(seed ^ 0xABCD), c.n_tokens * c.cols);
    let want = reference::matmul(
        &t.to_f32().expect("dequantize"),
        &x,
        c.rows,
        c.cols,
        c.n_tokens,
    );

    let w = match c.chunk_limit {
        Some(l) => GpuWeight::upload_chunked(ctx, &t, l),
        None => GpuWeight::upload(ctx, &t),
    }
    .expect("upload");
    // x starts 4 floats into its buffer, to exercise x_offset.
    let mut xh = vec![7.5f32; 4];
    xh.extend_from_slice(&x);
    let xb = upload_f32(ctx, &xh).expect("upload x");
    let stride = c.rows + c.stride_pad;
    let out_len = (c.n_tokens - 1) * stride + c.rows;
    let host = guarded(out_len);
    let ob = upload_f32(ctx, &host).expect("upload out");
    let io = MatmulIo {
        x: &xb,
        x_offset: 4,
        out: &ob,
        out_offset: GUARD,
        out_stride: Some(stride),
        n_tokens: c.n_tokens,
    };
    let mut enc = StepEncoder::new(ctx, "parity");
    record_matmul_op(&mut enc, &w, &io, c.op, c.variant).expect("record");
    // The Dp4a gemv_multi quantizes x first (act_q8), once for all chunks; a coop GEMM that
    // splits K adds a reduce per chunk.
    let dp4a = matches!(c.variant, Variant::Dp4a | Variant::Dp4aWide);
    let act_q8 = usize::from(c.op == Op::GemvMulti && dp4a);
    let split = |rows: usize| {
        let v = gemm_variant_for(c.variant, rows, c.n_tokens);
        usize::from(c.op == Op::Gemm && coop_splits(v, rows, c.cols, c.n_tokens) > 1)
    };
    let reduces: usize = w.chunks.iter().map(|ch| split(ch.rows.len())).sum();
    assert_eq!(
        enc.dispatch_count() as usize,
        w.chunks.len() + act_q8 + reduces,
        "{what}: one dispatch per chunk"
    );
    enc.submit().expect("submit");
    let all = read_f32(ctx, &ob, 0, host.len()).expect("read");

    assert_sentinels(&all, (0..GUARD).chain(GUARD + out_len..all.len()), &what);
    let mut got = Vec::with_capacity(c.n_tokens * c.rows);
    for tok in 0..c.n_tokens {
        let base = GUARD + tok * stride;
        got.extend_from_slice(&all[base..base + c.rows]);
        if tok + 1 < c.n_tokens {
            assert_sentinels(&all, base + c.rows..base + stride, &what);
        }
    }
    let e = nmse(&got, &want);
    eprintln!("{what}: nmse {e:e}");
    let limit = nmse_threshold(c.op, c.format, c.variant);
    assert!(e <= limit, "{what}: NMSE {e:e} > {limit:e}");
}

/// Every variant of `op` this device can run (all of them on lavapipe).
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

fn shapes(op: Op, format: QuantFormat) -> Vec<(usize, usize)> {
    let mut v = SHAPES.to_vec();
    if op == Op::Gemv {
        v.push(LONG_GEMV);
    }
    if format.block_elems() == 1 {
        v.extend_from_slice(FLOAT_SHAPES);
    }
    v
}

fn check(op: Op, format: QuantFormat) {
    let Some(ctx) = testkit::ctx() else { return };
    for variant in variants(ctx, op, format) {
        for (rows, cols) in shapes(op, format) {
            let tokens: &[usize] = match op {
                Op::Gemv => &[1],
                Op::GemvMulti => MULTI_TOKENS,
                _ => GEMM_TOKENS,
            };
            for &n_tokens in tokens {
                let stride_pad = if n_tokens > 1 { 3 } else { 0 };
                run(
                    ctx,
                    &Case {
                        op,
                        format,
                        variant,
                        rows,
                        cols,
                        n_tokens,
                        stride_pad,
                        chunk_limit: None,
                    },
                );
            }
        }
    }
}

macro_rules! parity_tests {
    ($($name:ident => $op:expr, $format:expr;)*) => {
        $( #[test] fn $name() { check($op, $format); } )*
        /// Every (op, format) pair the backend claims has a stamped test above.
        #[test]
        fn every_kernel_has_a_parity_test() {
            let stamped = [$(($op, $format)),*];
            for op in Op::MATMUL {
                for f in MATMUL_FORMATS.iter() {
                    // metal-marlin formats: marlin_formats_match below loops over them;
                    // trellis formats: trellis_parity.rs.
                    assert!(
                        f.is_marlin() || f.is_trellis() || stamped.contains(&(op, *f)),
                        "no parity test for {op}_{f}"
                    );
                }
            }
        }
    };
}

parity_tests! {
    gemv_f32 => Op::Gemv, QuantFormat::F32;
    gemv_f16 => Op::Gemv, QuantFormat::F16;
    gemv_bf16 => Op::Gemv, QuantFormat::BF16;
    gemv_q4_0 => Op::Gemv, QuantFormat::Q4_0;
    gemv_q4_1 => Op::Gemv, QuantFormat::Q4_1;
    gemv_q5_0 => Op::Gemv, QuantFormat::Q5_0;
    gemv_q5_1 => Op::Gemv, QuantFormat::Q5_1;
    gemv_q8_0 => Op::Gemv, QuantFormat::Q8_0;
    gemv_q4_k => Op::Gemv, QuantFormat::Q4_K;
    gemv_q5_k => Op::Gemv, QuantFormat::Q5_K;
    gemv_q6_k => Op::Gemv, QuantFormat::Q6_K;
    gemv_mxfp4 => Op::Gemv, QuantFormat::MXFP4;
    gemm_f32 => Op::Gemm, QuantFormat::F32;
    gemm_f16 => Op::Gemm, QuantFormat::F16;
    gemm_bf16 => Op::Gemm, QuantFormat::BF16;
    gemm_q4_0 => Op::Gemm, QuantFormat::Q4_0;
    gemm_q4_1 => Op::Gemm, QuantFormat::Q4_1;
    gemm_q5_0 => Op::Gemm, QuantFormat::Q5_0;
    gemm_q5_1 => Op::Gemm, QuantFormat::Q5_1;
    gemm_q8_0 => Op::Gemm, QuantFormat::Q8_0;
    gemm_q4_k => Op::Gemm, QuantFormat::Q4_K;
    gemm_q5_k => Op::Gemm, QuantFormat::Q5_K;
    gemm_q6_k => Op::Gemm, QuantFormat::Q6_K;
    gemm_mxfp4 => Op::Gemm, QuantFormat::MXFP4;
    gemv_multi_f32 => Op::GemvMulti, QuantFormat::F32;
    gemv_multi_f16 => Op::GemvMulti, QuantFormat::F16;
    gemv_multi_bf16 => Op::GemvMulti, QuantFormat::BF16;
    gemv_multi_q4_0 => Op::GemvMulti, QuantFormat::Q4_0;
    gemv_multi_q4_1 => Op::GemvMulti, QuantFormat::Q4_1;
    gemv_multi_q5_0 => Op::GemvMulti, QuantFormat::Q5_0;
    gemv_multi_q5_1 => Op::GemvMulti, QuantFormat::Q5_1;
    gemv_multi_q8_0 => Op::GemvMulti, QuantFormat::Q8_0;
    gemv_multi_q4_k => Op::GemvMulti, QuantFormat::Q4_K;
    gemv_multi_q5_k => Op::GemvMulti, QuantFormat::Q5_K;
    gemv_multi_q6_k => Op::GemvMulti, QuantFormat::Q6_K;
    gemv_multi_mxfp4 => Op::GemvMulti, QuantFormat::MXFP4;
}

/// The metal-marlin formats parity-tested on lavapipe: every fp4 group, nvfp4, fp8, every
/// integer width with and without zero points, and the other group sizes on int4. (The
/// shader test validates every format's kernels; these run them.)
fn marlin_cases() -> Vec<QuantFormat> {
    use marlin_core::{Group, IntBits, IntFormat};
    let mut v: Vec<QuantFormat> = Group::ALL.into_iter().map(QuantFormat::Fp4).collect();
    v.extend([QuantFormat::Nvfp4, QuantFormat::Fp8]);
    for bits in IntBits::ALL {
        for zeros in [false, true] {
            v.push(QuantFormat::Int(IntFormat {
                bits,
                zeros,
                group: Group::G128,
            }));
        }
    }
    for group in [Group::G32, Group::G64, Group::G256] {
        v.push(QuantFormat::Int(IntFormat {
            bits: IntBits::B4,
            zeros: true,
            group,
        }));
    }
    v
}

/// Whole super-blocks; two and a 64-element tail (SmolLM2's 576); a tail alone, with
/// partial scale groups.
const MARLIN_SHAPES: [(usize, usize); 3] = [(37, 512), (5, 576), (3, 96)];

/// `op` on `format` for every variant, shape of [`MARLIN_SHAPES`] and token count.
fn check_marlin(ctx: &GpuContext, op: Op, format: QuantFormat, tokens: &[usize]) {
    for variant in variants(ctx, op, format) {
        for (rows, cols) in MARLIN_SHAPES {
            for &n_tokens in tokens {
                run(
                    ctx,
                    &Case {
                        op,
                        format,
                        variant,
                        rows,
                        cols,
                        n_tokens,
                        stride_pad: if n_tokens > 1 { 3 } else { 0 },
                        chunk_limit: None,
                    },
                );
            }
        }
    }
}

/// GEMV and GEMM of the metal-marlin formats (rows with and without tail blocks, every
/// variant), against the f64 reference on dequantized weights, with guard regions.
#[test]
fn marlin_formats_match() {
    let Some(ctx) = testkit::ctx() else { return };
    for format in marlin_cases() {
        check_marlin(ctx, Op::Gemv, format, &[1]);
        check_marlin(ctx, Op::Gemm, format, &[7]);
    }
}

/// gemv_multi of the metal-marlin formats, every token count of [`MULTI_TOKENS`].
#[test]
fn marlin_formats_gemv_multi_match() {
    let Some(ctx) = testkit::ctx() else { return };
    for format in marlin_cases() {
        check_marlin(ctx, Op::GemvMulti, format, MULTI_TOKENS);
    }
}

/// Weights split into several row chunks (as oversize tensors are) give the same result.
#[test]
fn chunked_weights_match() {
    let Some(ctx) = testkit::ctx() else { return };
    for format in [
        QuantFormat::Q4_0,
        QuantFormat::Q6_K,
        QuantFormat::F16,
        QuantFormat::Q4_K,
        QuantFormat::Nvfp4,
        QuantFormat::Int(marlin_core::IntFormat {
            bits: marlin_core::IntBits::B3,
            zeros: true,
            group: marlin_core::Group::G64,
        }),
    ] {
        // metal-marlin rows with a tail block: each chunk has its own scale/zero regions.
        let cols = if format.is_marlin() { 576 } else { 512 };
        let limit = (format.row_bytes(cols).expect("row bytes") * 10) as u64;
        for (op, n_tokens) in [(Op::Gemv, 1), (Op::Gemm, 7), (Op::GemvMulti, 5)] {
            let case = Case {
                op,
                format,
                variant: ctx.default_variant(op),
                rows: 37,
                cols,
                n_tokens,
                stride_pad: 0,
                chunk_limit: Some(limit),
            };
            run(ctx, &case);
        }
        let t = random_weight(format, 37, cols, 1);
        let w = GpuWeight::upload_chunked(ctx, &t, limit).expect("upload");
        assert!(w.chunks.len() >= 4, "{format}: {} chunks", w.chunks.len());
        assert_eq!(w.chunks.last().map(|c| c.rows.end), Some(37));
    }
}
