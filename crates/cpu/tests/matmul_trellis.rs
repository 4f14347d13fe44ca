//! Trellis matmul (tiles decoded on the fly, Hadamards on activations and outputs) against
//! the core dequantizer + f64 matmul, every kernel family, every width and codebook.

mod matmul_util;

use std::sync::Arc;

use marlin_core::formats::trellis::layout;
use marlin_core::{QTensor, QuantFormat, TensorData, TrellisFormat};
use marlin_cpu::matmul::{matmul, matmul_with, Isa};
use matmul_util::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Random tile bits, random ±1·scale suh/svh.
fn random_trellis(f: TrellisFormat, n: usize, k: usize, seed: u64) -> QTensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let lay = layout(f, n, k).unwrap();
    let mut bytes: Vec<u8> = (0..lay.suh_at).map(|_| rng.random()).collect();
    for _ in 0..n + k {
        let sign = if rng.random::<bool>() { 1.0f32 } else { -1.0 };
        bytes.extend((sign * rng.random_range(0.5..1.5f32)).to_le_bytes());
    }
    QTensor::new(
        QuantFormat::Trellis(f),
        vec![n, k],
        TensorData::Owned(Arc::new(bytes)),
    )
    .unwrap()
}

fn check(f: TrellisFormat, shapes: &[(usize, usize)], tokens: &[usize]) {
    let mut seed = u64::from(f.bits) * 100 + f.codebook as u64;
    for &(n, k) in shapes {
        seed += 1;
        let w = random_trellis(f, n, k, seed);
        for &nt in tokens {
            let x = gaussian(nt * k, seed + 7);
            let (want, mag) = reference(&w, &x, nt);
            for isa in Isa::available() {
                let mut out = vec![f32::NAN; n * nt];
                matmul_with(isa, &w, &x, nt, &mut out).unwrap();
                let e = rel_err(&out, &want, mag);
                assert!(e <= TOL_F32, "{f:?} {isa:?} [{n},{k}] x{nt}: err {e:.3e}");
            }
            let mut out = vec![0f32; n * nt];
            matmul(&w, &x, nt, &mut out).unwrap();
            assert!(rel_err(&out, &want, mag) <= TOL_F32);
        }
    }
}

#[test]
fn every_width_and_codebook_small_shapes() {
    for f in TrellisFormat::all() {
        check(f, &[(16, 16), (32, 48), (48, 160)], &[1, 3, 17]);
    }
}

#[test]
fn parallel_strips_and_wide_hadamards() {
    // 256 KiB of tiles: above the serial limit, 128-wide Hadamards on both sides.
    let f = TrellisFormat::new(4, marlin_core::Codebook::Mcg).unwrap();
    check(f, &[(512, 1024)], &[1, 2]);
    let f = TrellisFormat::new(3, marlin_core::Codebook::Inst3).unwrap();
    check(f, &[(384, 640)], &[1, 33]);
}

#[test]
fn bad_shapes_are_errors() {
    let f = TrellisFormat::new(2, marlin_core::Codebook::Mul1).unwrap();
    let w = random_trellis(f, 32, 64, 1);
    let mut out = vec![0f32; 32];
    assert!(matmul(&w, &[0.0; 63], 1, &mut out).is_err());
    assert!(matmul(&w, &[0.0; 64], 1, &mut out[..31]).is_err());
    assert!(matmul(&w, &[0.0; 128], 2, &mut vec![0f32; 64]).is_ok());
}

/// GEMV speed at an 8B-model shape (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn bench_gemv_4096() {
    let (n, k) = (4096, 4096);
    for base in ["q4_0", "fp4_g128"] {
        let f = QuantFormat::from_name(base).unwrap();
        let w = quantized(f, n, k, 9);
        let x = gaussian(k, 3);
        let mut out = vec![0f32; n];
        let t = std::time::Instant::now();
        for _ in 0..20 {
            matmul(&w, &x, 1, &mut out).unwrap();
        }
        let s = t.elapsed().as_secs_f64() / 20.0;
        println!("{base}: {:.2} ms", s * 1e3);
    }
    for f in TrellisFormat::all() {
        let w = random_trellis(f, n, k, 9);
        let x = gaussian(k, 3);
        let mut out = vec![0f32; n];
        matmul(&w, &x, 1, &mut out).unwrap();
        let reps = 20;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            matmul(&w, &x, 1, &mut out).unwrap();
        }
        let s = t.elapsed().as_secs_f64() / f64::from(reps);
        let gw = (n * k) as f64 / s / 1e9;
        println!(
            "{}: {:.2} ms, {gw:.2} Gweights/s, {:.2} GB/s packed",
            f.name(),
            s * 1e3,
            w.bytes().len() as f64 / s / 1e9
        );
    }
}

/// GEMM (prefill) speed, 64 tokens × 2048×2048 (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn bench_gemm_64_tokens() {
    let (n, k, nt) = (2048, 2048, 64);
    let x = gaussian(nt * k, 3);
    let mut out = vec![0f32; n * nt];
    let mut time = |w: &QTensor| {
        matmul(w, &x, nt, &mut out).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..5 {
            matmul(w, &x, nt, &mut out).unwrap();
        }
        t.elapsed().as_secs_f64() / 5.0 * 1e3
    };
    let fp4 = quantized(QuantFormat::from_name("fp4_g128").unwrap(), n, k, 9);
    println!("fp4_g128: {:.2} ms", time(&fp4));
    for f in TrellisFormat::all().into_iter().step_by(4) {
        let w = random_trellis(f, n, k, 9);
        println!("{}: {:.2} ms", f.name(), time(&w));
    }
}
