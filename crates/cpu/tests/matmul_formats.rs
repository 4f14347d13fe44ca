//! Every format × every available kernel family × small shapes against the f64 reference
//! computed from the core dequantizer. Error metric and tolerances: `matmul_util`.

mod matmul_util;

use marlin_core::{QTensor, QuantFormat};
use marlin_cpu::matmul::{matmul, matmul_with, Isa};
use matmul_util::*;

fn cols_for(format: QuantFormat) -> Vec<usize> {
    match format.block_elems() {
        1 => vec![37, 256, 512],
        32 => vec![96, 256, 512],
        _ => vec![256, 512],
    }
}

fn check_format(format: QuantFormat) {
    let mut seed = format.ggml_id().unwrap_or(99) as u64 * 1000;
    for rows in [1, 7, 64] {
        for cols in cols_for(format) {
            seed += 1;
            let w = quantized(format, rows, cols, seed);
            for n_tokens in [1, 3, 17] {
                let x = gaussian(n_tokens * cols, seed + 500);
                let (want, mag) = reference(&w, &x, n_tokens);
                let tol = tolerance(format, rows * n_tokens);
                let mut by_isa = Vec::new();
                for isa in Isa::available() {
                    let mut out = vec![f32::NAN; rows * n_tokens];
                    matmul_with(isa, &w, &x, n_tokens, &mut out).unwrap();
                    let e = rel_err(&out, &want, mag);
                    assert!(
                        e <= tol,
                        "{format} {isa:?} rows {rows} cols {cols} tokens {n_tokens}: err {e:.3e} > {tol:e}"
                    );
                    by_isa.push(out);
                }
                // Kernel families see the same int8 activations (up to rare rounding ties),
                // so they must agree far more tightly than with the reference.
                let base: Vec<f64> = by_isa[0].iter().map(|&v| v as f64).collect();
                for out in &by_isa[1..] {
                    let e = rel_err(out, &base, mag);
                    assert!(
                        e <= 1e-4,
                        "{format} rows {rows} cols {cols}: SIMD vs scalar {e:.3e}"
                    );
                }
                let mut out = vec![0f32; rows * n_tokens];
                matmul(&w, &x, n_tokens, &mut out).unwrap();
                assert!(rel_err(&out, &want, mag) <= tol);
            }
        }
    }
}

macro_rules! format_tests {
    ($($name:ident => $f:ident),* $(,)?) => {
        $(#[test] fn $name() { check_format(QuantFormat::$f); })*
    };
}

format_tests!(
    f32 => F32, f16 => F16, bf16 => BF16,
    q4_0 => Q4_0, q4_1 => Q4_1, q5_0 => Q5_0, q5_1 => Q5_1, q8_0 => Q8_0, q8_1 => Q8_1,
    q2_k => Q2_K, q3_k => Q3_K, q4_k => Q4_K, q5_k => Q5_K, q6_k => Q6_K, q8_k => Q8_K,
    iq4_nl => IQ4_NL, iq4_xs => IQ4_XS, mxfp4 => MXFP4,
);

#[test]
fn random_bit_patterns_match_reference() {
    use QuantFormat::*;
    for format in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K] {
        let (rows, cols, n_tokens) = (9, 512, 5);
        let w = random_blocks(format, rows, cols, format.ggml_id().unwrap_or(99) as u64);
        let x = gaussian(n_tokens * cols, 7);
        let (want, mag) = reference(&w, &x, n_tokens);
        for isa in Isa::available() {
            let mut out = vec![0f32; rows * n_tokens];
            matmul_with(isa, &w, &x, n_tokens, &mut out).unwrap();
            let e = rel_err(&out, &want, mag);
            assert!(
                e <= tolerance(format, rows * n_tokens),
                "{format} {isa:?}: err {e:.3e}"
            );
        }
    }
}

#[test]
fn marlin_formats_match_reference() {
    for format in QuantFormat::marlin_all() {
        let (rows, cols, n_tokens) = (7, 576, 5);
        let w = quantized(format, rows, cols, 11);
        let x = gaussian(n_tokens * cols, 5);
        let (want, mag) = reference(&w, &x, n_tokens);
        for isa in Isa::available() {
            let mut out = vec![0f32; rows * n_tokens];
            matmul_with(isa, &w, &x, n_tokens, &mut out).unwrap();
            let e = rel_err(&out, &want, mag);
            // 4-bit formats have int8-activation kernels on SIMD CPUs; the rest decode to f32.
            let tol = if marlin_cpu::matmul::has_fast_kernel(isa, format) {
                TOL_INT8
            } else {
                TOL_F32
            };
            assert!(e <= tol, "{format} {isa:?}: err {e:.3e}");
        }
    }
}

#[test]
fn hadamard_rotated_weight_gives_the_unrotated_product() {
    let (rows, cols) = (4, 256);
    let wv = gaussian(rows * cols, 3);
    let x = gaussian(cols, 4);
    let plain = QTensor::from_f32(vec![rows, cols], &wv).unwrap();
    let mut rot = wv.clone();
    for r in rot.chunks_exact_mut(cols) {
        marlin_core::hadamard::rotate(r, 64).unwrap();
    }
    let rot = QTensor::from_f32(vec![rows, cols], &rot)
        .unwrap()
        .with_hadamard(64)
        .unwrap();
    let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
    matmul(&plain, &x, 1, &mut a).unwrap();
    matmul(&rot, &x, 1, &mut b).unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
    }
}
