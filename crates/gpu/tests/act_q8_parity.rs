//! Parity of `act_q8` (the Dp4a `gemv_multi`'s input quantization) against a host
//! quantization of the same 32-element units: codes (natural and even/odd order), scales
//! and code sums, with the layout the kernel documents; and its shape errors.

mod testkit;

use marlin_gpu::{act_q8_bytes, read_bytes, record_act_q8, upload_f32, Error, StepEncoder};
use testkit::{random_vec, rng};

/// Host units: (codes, d, d * sum of codes) per 32 values, q = round(x / d), d = max |x| / 127.
fn host_units(x: &[f32]) -> Vec<([i8; 32], f32, f32)> {
    x.chunks(32)
        .map(|u| {
            let amax = u.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut q = [0i8; 32];
            for (c, v) in q.iter_mut().zip(u) {
                *c = (v * inv).round().clamp(-128.0, 127.0) as i8;
            }
            let sum: i32 = q.iter().map(|&c| i32::from(c)).sum();
            (q, d, d * sum as f32)
        })
        .collect()
}

#[test]
fn act_q8_matches_host_quantization() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    for (n, cols, perm) in [
        (1, 32, false),
        (3, 96, false),
        (5, 256, false),
        (3, 96, true),
    ] {
        let mut r = rng(n as u64 * 7 + cols as u64);
        let mut x = random_vec(&mut r, n * cols);
        // A zero unit (d = 0) and one with a single large outlier.
        x[..32].fill(0.0);
        if n * cols > 64 {
            x[40] = 50.0;
        }
        // x starts 8 floats into its buffer, to exercise the offset.
        let mut xh = vec![3.0f32; 8];
        xh.extend_from_slice(&x);
        let xb = upload_f32(&ctx, &xh).expect("upload x");
        let mut enc = StepEncoder::new(&ctx, "act_q8");
        let q = record_act_q8(&mut enc, &xb, 8, n, cols, perm).expect("record");
        enc.submit().expect("submit");
        let bytes = read_bytes(&ctx, &q, 0, act_q8_bytes(n, cols)).expect("read");
        let units = n * cols / 32;
        let want = host_units(&x);
        let scales = &bytes[32 * units..];
        for (s, (codes, d, dsum)) in want.iter().enumerate() {
            let got = &bytes[32 * s..32 * s + 32];
            // perm: each 8 codes stored as elements 0, 2, 4, 6, 1, 3, 5, 7.
            let order = |j: usize| match perm {
                true => j / 8 * 8 + [0, 2, 4, 6, 1, 3, 5, 7][j % 8],
                false => j,
            };
            for (j, &g) in got.iter().enumerate() {
                let w = codes[order(j)];
                // Ties may round either way (the kernel multiplies by 1 / d).
                let diff = (i32::from(g as i8) - i32::from(w)).abs();
                assert!(
                    diff <= 1,
                    "n={n} cols={cols} unit {s} elem {j}: {} vs {w}",
                    g as i8
                );
            }
            let f = |i: usize| f32::from_le_bytes(scales[4 * i..4 * i + 4].try_into().unwrap());
            let (gd, gsum) = (f(2 * s), f(2 * s + 1));
            assert!((gd - d).abs() <= d * 1e-6, "unit {s}: d {gd} vs {d}");
            assert!(
                (gsum - dsum).abs() <= d * 2.0 + 1e-6,
                "unit {s}: d sum {gsum} vs {dsum}"
            );
        }
        assert_eq!(
            f32::from_le_bytes(scales[..4].try_into().unwrap()),
            0.0,
            "zero unit"
        );
    }
}

#[test]
fn act_q8_rejects_bad_shapes() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let xb = upload_f32(&ctx, &[0.0; 64]).expect("upload");
    let mut enc = StepEncoder::new(&ctx, "act_q8");
    for (off, n, cols) in [(0, 1, 48), (2, 1, 32), (0, 0, 32), (0, 3, 32)] {
        let r = record_act_q8(&mut enc, &xb, off, n, cols, false);
        assert!(
            matches!(r, Err(Error::Shape { .. })),
            "offset {off}, [{n}, {cols}]: {r:?}"
        );
    }
}
