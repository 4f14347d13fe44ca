//! ggml's MXFP4 on the int8 tile kernels: every kernel family against the f64 reference of
//! the core dequantizer, for several shapes and 1..=33 tokens, and the families against
//! each other.

mod matmul_util;

use std::sync::Arc;

use marlin_core::{QTensor, QuantFormat, TensorData};
use marlin_cpu::matmul::{has_fast_kernel, matmul, matmul_with, Isa};
use matmul_util::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// MXFP4 weights with random code bytes (all 16 codes, −0 included) and scale bytes near
/// 2^0 so the products stay normal floats.
fn random_mxfp4(rows: usize, cols: usize, seed: u64) -> QTensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bytes: Vec<u8> = (0..rows * cols / 32 * 17).map(|_| rng.random()).collect();
    for blk in bytes.chunks_exact_mut(17) {
        blk[0] = rng.random_range(118..=134);
    }
    QTensor::new(
        QuantFormat::MXFP4,
        vec![rows, cols],
        TensorData::Owned(Arc::new(bytes)),
    )
    .unwrap()
}

/// Run every available family; check each against the reference and against the first.
fn check(w: &QTensor, n_tokens: usize, seed: u64) {
    let (rows, cols) = (w.shape[0], w.shape[1]);
    let x = gaussian(n_tokens * cols, seed);
    let (want, mag) = reference(w, &x, n_tokens);
    let tol = if rows * n_tokens >= 16 {
        TOL_INT8
    } else {
        TOL_INT8_FEW
    };
    let mut by_isa = Vec::new();
    for isa in Isa::available() {
        assert!(has_fast_kernel(isa, QuantFormat::MXFP4), "{isa:?}");
        let mut out = vec![f32::NAN; rows * n_tokens];
        matmul_with(isa, w, &x, n_tokens, &mut out).unwrap();
        let e = rel_err(&out, &want, mag);
        assert!(
            e <= tol,
            "{isa:?} rows {rows} cols {cols} tokens {n_tokens}: err {e:.3e} > {tol:e}"
        );
        by_isa.push(out);
    }
    // Same int8 activations and exact integer block dots: only the f32 summation order
    // differs between families.
    let base: Vec<f64> = by_isa[0].iter().map(|&v| f64::from(v)).collect();
    for out in &by_isa[1..] {
        let e = rel_err(out, &base, mag);
        assert!(
            e <= 1e-5,
            "rows {rows} cols {cols} tokens {n_tokens}: {e:.3e}"
        );
    }
}

#[test]
fn every_token_count_matches_reference() {
    let w = random_mxfp4(9, 96, 1);
    for n_tokens in 1..=33 {
        check(&w, n_tokens, 100 + n_tokens as u64);
    }
}

#[test]
fn shapes_match_reference() {
    let mut seed = 7;
    for rows in [1, 2, 5, 64] {
        for cols in [32, 160, 512] {
            seed += 1;
            let w = random_mxfp4(rows, cols, seed);
            for n_tokens in [1, 2, 4, 5, 8, 17] {
                check(&w, n_tokens, seed + 50);
            }
        }
    }
}

#[test]
fn quantized_weights_match_reference() {
    for (rows, cols) in [(7, 64), (33, 256)] {
        let w = quantized(QuantFormat::MXFP4, rows, cols, 3);
        for n_tokens in [1, 3, 4, 12] {
            check(&w, n_tokens, 9);
        }
    }
}

/// Hand-built blocks: low nibbles code 7 (+6.0), high nibbles code 14 (−4.0) at e = 127, so
/// each block contributes 16·6 − 16·4 = 32 against all-ones activations (exact in int8 up
/// to the f32 scale product).
#[test]
fn hand_built_blocks_give_known_values() {
    let (rows, cols) = (3, 64);
    let mut bytes = Vec::new();
    for _ in 0..rows * cols / 32 {
        bytes.push(127u8);
        bytes.extend([0xE7u8; 16]);
    }
    let w = QTensor::new(
        QuantFormat::MXFP4,
        vec![rows, cols],
        TensorData::Owned(Arc::new(bytes)),
    )
    .unwrap();
    let x = vec![1f32; 2 * cols];
    for isa in Isa::available() {
        let mut out = vec![0f32; 2 * rows];
        matmul_with(isa, &w, &x, 2, &mut out).unwrap();
        for &v in &out {
            assert!((v - cols as f32).abs() <= 1e-4, "{isa:?}: {v}");
        }
    }
}

/// Larger than the serial GEMV threshold and one token chunk: the parallel paths.
#[test]
fn parallel_paths_match_reference() {
    let (rows, cols) = (301, 256);
    let w = random_mxfp4(rows, cols, 21);
    for n_tokens in [1, 70] {
        let x = gaussian(n_tokens * cols, 22);
        let (want, mag) = reference(&w, &x, n_tokens);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut out = vec![0f32; rows * n_tokens];
        pool.install(|| matmul(&w, &x, n_tokens, &mut out)).unwrap();
        let e = rel_err(&out, &want, mag);
        assert!(e <= TOL_INT8, "n{n_tokens}: {e:.3e}");
    }
}

/// GEMV / GEMM speed of MXFP4 next to Q4_0 at 2048×2048 (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn speed_vs_q4_0() {
    let (rows, cols) = (2048, 2048);
    let mx = random_mxfp4(rows, cols, 5);
    let q4 = quantized(QuantFormat::Q4_0, rows, cols, 5);
    for n_tokens in [1, 64] {
        let x = gaussian(n_tokens * cols, 6);
        let mut out = vec![0f32; rows * n_tokens];
        for (name, w) in [("mxfp4", &mx), ("q4_0", &q4)] {
            let reps = if n_tokens == 1 { 200 } else { 10 };
            matmul(w, &x, n_tokens, &mut out).unwrap();
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                matmul(w, &x, n_tokens, &mut out).unwrap();
            }
            let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(reps);
            println!("{name} {n_tokens} tokens: {us:.0} µs");
            assert!(out.iter().all(|v| v.is_finite()));
        }
    }
}
