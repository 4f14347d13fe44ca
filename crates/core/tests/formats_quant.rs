//! Reference quantizers: exact matches with gguf-py where it has the same rule, hand-checked
//! ggml rounding rules, and round-trip error bounds for every format.

use marlin_core::formats::{dequantize, quantize, quantize_tensor};
use marlin_core::QuantFormat;
use rand::{Rng, SeedableRng};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Gaussian samples (Box–Muller) from a fixed seed.
fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(1e-12);
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

#[test]
fn quantize_matches_gguf_py_exactly() {
    let formats = [
        QuantFormat::F16,
        QuantFormat::BF16,
        QuantFormat::Q4_0,
        QuantFormat::Q4_1,
        QuantFormat::Q5_0,
        QuantFormat::Q5_1,
        QuantFormat::Q8_0,
        QuantFormat::MXFP4,
    ];
    for format in formats {
        let x: Vec<f32> = fixture(&format!("{}.qin", format.name()))
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let want = fixture(&format!("{}.qout", format.name()));
        let mut got = vec![0u8; want.len()];
        quantize(format, &x, &mut got).unwrap();
        let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(first_bad, None, "{format}: first differing byte");
    }
}

/// Relative RMS error of a quantize → dequantize round trip.
fn round_trip_error(format: QuantFormat, x: &[f32]) -> f64 {
    let mut q = vec![0u8; format.row_bytes(x.len()).unwrap()];
    quantize(format, x, &mut q).unwrap();
    let mut y = vec![0f32; x.len()];
    dequantize(format, &q, &mut y).unwrap();
    let (mut err, mut sig) = (0f64, 0f64);
    for (&a, &b) in x.iter().zip(&y) {
        err += f64::from(a - b).powi(2);
        sig += f64::from(a).powi(2);
    }
    (err / sig).sqrt()
}

#[test]
fn round_trip_error_is_bounded() {
    // (format, bound on relative RMS error for this data; measured values are ~20% lower)
    let bounds = [
        (QuantFormat::F32, 0.0),
        (QuantFormat::F16, 3e-4),
        (QuantFormat::BF16, 2.5e-3),
        (QuantFormat::Q8_0, 0.007),
        (QuantFormat::Q8_1, 0.007),
        (QuantFormat::Q8_K, 0.009),
        (QuantFormat::Q6_K, 0.022),
        (QuantFormat::Q5_0, 0.055),
        (QuantFormat::Q5_1, 0.048),
        (QuantFormat::Q5_K, 0.046),
        (QuantFormat::Q4_0, 0.11),
        (QuantFormat::Q4_1, 0.095),
        (QuantFormat::Q4_K, 0.094),
        (QuantFormat::IQ4_NL, 0.095),
        (QuantFormat::IQ4_XS, 0.096),
        (QuantFormat::MXFP4, 0.145),
        (QuantFormat::Q3_K, 0.185),
        (QuantFormat::Q2_K, 0.35),
    ];
    let mut x = gaussian(4096, 7);
    // Vary the magnitude per 256-element region so super-block scales matter.
    for (i, v) in x.iter_mut().enumerate() {
        *v *= [0.01f32, 1.0, 30.0, 0.2][(i / 256) % 4];
    }
    for (format, bound) in bounds {
        let e = round_trip_error(format, &x);
        println!("{format}: relative RMS error {e:.5}");
        assert!(e <= bound, "{format}: error {e} > {bound}");
    }
}

#[test]
fn affine_formats_handle_offset_data() {
    // Mostly-positive data with a large mean: the min/offset path must carry it.
    let x: Vec<f32> = gaussian(2048, 11).iter().map(|v| 5.0 + v).collect();
    for (format, bound) in [
        (QuantFormat::Q4_1, 0.02),
        (QuantFormat::Q5_1, 0.01),
        (QuantFormat::Q4_K, 0.03),
        (QuantFormat::Q5_K, 0.015),
        (QuantFormat::Q2_K, 0.15),
    ] {
        let e = round_trip_error(format, &x);
        println!("{format}: offset data relative RMS error {e:.5}");
        assert!(e <= bound, "{format}: error {e} > {bound}");
    }
}

#[test]
fn q8_0_rounds_half_away_from_zero() {
    let mut x = [0f32; 32];
    x[0] = 127.0; // amax 127 → d = 1
    x[1] = 0.5;
    x[2] = -2.5;
    x[3] = 1.4999;
    let mut b = [0u8; 34];
    quantize(QuantFormat::Q8_0, &x, &mut b).unwrap();
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x3c00); // f16 1.0
    assert_eq!([b[2], b[3], b[4], b[5]].map(|v| v as i8), [127, 1, -3, 1]);
}

#[test]
fn q8_1_is_q8_0_plus_sum() {
    let x = gaussian(64, 3);
    let (mut a, mut b) = ([0u8; 68], [0u8; 72]);
    quantize(QuantFormat::Q8_0, &x, &mut a).unwrap();
    quantize(QuantFormat::Q8_1, &x, &mut b).unwrap();
    for blk in 0..2 {
        let (qa, qb) = (&a[34 * blk..34 * blk + 34], &b[36 * blk..36 * blk + 36]);
        assert_eq!(qa[..2], qb[..2]);
        assert_eq!(qa[2..], qb[4..]);
        let sum: i32 = qb[4..].iter().map(|&v| i32::from(v as i8)).sum();
        let d = x[32 * blk..32 * blk + 32]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()))
            / 127.0;
        let s = marlin_core::formats::f32_to_f16(sum as f32 * d);
        assert_eq!(u16::from_le_bytes([qb[2], qb[3]]), s);
    }
}

#[test]
fn q8_k_follows_ggml_rule() {
    let mut x = [0f32; 256];
    x[0] = 1.0;
    x[1] = -127.0; // largest magnitude, negative → iscale = 1, maps to −127
    x[2] = 0.5; // ties go to even: 0
    x[3] = 1.5; // → 2
    x[4] = 2.5; // → 2
    x[17] = -3.0;
    let mut b = [0u8; 292];
    quantize(QuantFormat::Q8_K, &x, &mut b).unwrap();
    assert_eq!(f32::from_le_bytes([b[0], b[1], b[2], b[3]]), 1.0);
    let q: Vec<i8> = b[4..9].iter().map(|&v| v as i8).collect();
    assert_eq!(q, [1, -127, 0, 2, 2]);
    let bsums: Vec<i16> = (0..2)
        .map(|k| i16::from_le_bytes([b[260 + 2 * k], b[261 + 2 * k]]))
        .collect();
    assert_eq!(bsums, [1 - 127 + 2 + 2, -3]);

    // Positive extreme: iscale = −127/max, so the extreme maps to −127 and d is negative.
    let mut y = [0f32; 256];
    y[9] = 2.0;
    quantize(QuantFormat::Q8_K, &y, &mut b).unwrap();
    assert_eq!(b[4 + 9] as i8, -127);
    assert_eq!(
        f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        1.0 / (-127.0 / 2.0)
    );

    // All zeros → an all-zero block.
    quantize(QuantFormat::Q8_K, &[0f32; 256], &mut b).unwrap();
    assert!(b.iter().all(|&v| v == 0));
}

#[test]
fn quantize_tensor_builds_an_owned_tensor() {
    let x = gaussian(2 * 256, 5);
    let t = quantize_tensor(QuantFormat::Q4_K, &[2, 256], &x).unwrap();
    assert_eq!(t.shape, vec![2, 256]);
    assert_eq!(t.bytes().len(), 2 * 144);
    let y = t.to_f32().unwrap();
    let mut row1 = vec![0f32; 256];
    t.dequantize_row(1, &mut row1).unwrap();
    assert_eq!(&y[256..], &row1[..]);
    assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.5));
    assert!(quantize_tensor(QuantFormat::Q4_K, &[2, 256], &x[..256]).is_err());
    assert!(quantize_tensor(QuantFormat::Q4_K, &[4, 128], &x).is_err());
    assert!(quantize_tensor(QuantFormat::Q4_K, &[usize::MAX, 2, 256], &x).is_err());
}
