//! Matmul edge cases: bad shapes are errors, empty work is fine, the parallel GEMV/GEMM
//! paths (large matrices, many tokens, other pool sizes) agree with the reference.

mod matmul_util;

use marlin_core::{QTensor, QuantFormat};
use marlin_cpu::matmul::{has_fast_kernel, matmul, matmul_with, Isa};
use marlin_cpu::Error;
use matmul_util::*;

#[test]
fn shape_mismatch_is_an_error() {
    let w = quantized(QuantFormat::Q4_0, 4, 64, 1);
    let x = vec![0f32; 64 * 2];
    let mut out = vec![0f32; 8];
    assert!(matches!(
        matmul(&w, &x[..100], 2, &mut out),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        matmul(&w, &x, 2, &mut out[..7]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        matmul(&w, &x, 3, &mut out),
        Err(Error::Shape { .. })
    ));
    let w3 = QTensor::from_f32(vec![2, 2, 64], &vec![0f32; 256]).unwrap();
    assert!(matches!(
        matmul(&w3, &x, 2, &mut out),
        Err(Error::Shape { .. })
    ));
    // usize overflow in n_tokens × cols must not wrap into a match.
    assert!(matmul(&w, &x, usize::MAX / 2, &mut out).is_err());
}

#[test]
fn zero_tokens_is_a_no_op() {
    let w = quantized(QuantFormat::Q8_0, 4, 64, 2);
    let mut out: Vec<f32> = vec![];
    matmul(&w, &[], 0, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn zero_columns_give_zeros() {
    for format in [
        QuantFormat::Q4_1,
        QuantFormat::Q4_K,
        QuantFormat::F16,
        QuantFormat::Q3_K,
    ] {
        let w = QTensor::new(
            format,
            vec![3, 0],
            marlin_core::TensorData::Owned(std::sync::Arc::new(vec![])),
        )
        .unwrap();
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; 6];
            matmul_with(isa, &w, &[], 2, &mut out).unwrap();
            assert_eq!(out, vec![0.0; 6], "{format} {isa:?}");
        }
    }
}

#[test]
fn non_finite_activations_do_not_panic() {
    let w = quantized(QuantFormat::Q4_0, 8, 64, 3);
    let mut x = gaussian(4 * 64, 4);
    x[5] = f32::NAN;
    x[70] = f32::INFINITY;
    x[140] = f32::MAX;
    for isa in Isa::available() {
        let mut out = vec![0f32; 32];
        matmul_with(isa, &w, &x, 4, &mut out).unwrap();
        // Tokens without bad values are unaffected.
        let (want, mag) = reference(&w, &x[192..], 1);
        assert!(rel_err(&out[24..], &want, mag) <= TOL_INT8_FEW, "{isa:?}");
    }
}

#[test]
fn fast_kernel_table() {
    use QuantFormat::*;
    for f in [
        F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, MXFP4,
    ] {
        assert!(has_fast_kernel(Isa::Scalar, f), "{f}");
        assert_eq!(
            has_fast_kernel(Isa::Avx2, f),
            Isa::Avx2.is_available(),
            "{f}"
        );
    }
    for f in [Q2_K, Q3_K, IQ4_NL, IQ4_XS, Q8_1, Q8_K] {
        assert!(!has_fast_kernel(Isa::Scalar, f), "{f}");
    }
}

/// Bigger than the serial threshold and longer than one token chunk, run in pools of
/// several sizes (task splitting must not change results beyond float reassociation).
#[test]
fn parallel_paths_match_reference() {
    use QuantFormat::*;
    for (format, rows, cols) in [(Q4_1, 301, 512), (Q8_0, 257, 256), (Q6_K, 130, 512)] {
        let w = quantized(format, rows, cols, 11);
        for n_tokens in [1, 70] {
            let x = gaussian(n_tokens * cols, 12);
            let (want, mag) = reference(&w, &x, n_tokens);
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                for isa in Isa::available() {
                    let mut out = vec![0f32; rows * n_tokens];
                    pool.install(|| matmul_with(isa, &w, &x, n_tokens, &mut out))
                        .unwrap();
                    let e = rel_err(&out, &want, mag);
                    assert!(
                        e <= TOL_INT8,
                        "{format} {isa:?} t{threads} n{n_tokens}: {e:.3e}"
                    );
                }
            }
        }
    }
}

#[test]
fn concurrent_callers_share_nothing() {
    let w = quantized(QuantFormat::Q4_K, 64, 512, 21);
    let x = gaussian(3 * 512, 22);
    let (want, mag) = reference(&w, &x, 3);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10 {
                    let mut out = vec![0f32; 64 * 3];
                    matmul(&w, &x, 3, &mut out).unwrap();
                    assert!(rel_err(&out, &want, mag) <= TOL_INT8);
                }
            });
        }
    });
}
