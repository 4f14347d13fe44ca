//! CPU element-wise ops and the RoPE table against the core reference oracle.

use marlin_core::reference;
use marlin_core::rope::{RopeConfig, RopeMode, RopeScaling};
use marlin_cpu::ops;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn rand_vec(rng: &mut StdRng, n: usize, amp: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-amp..amp)).collect()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

/// Sizes below and above the parallel threshold.
const SIZES: [(usize, usize); 3] = [(1, 64), (3, 576), (40, 1000)];

#[test]
fn rms_norm_matches_reference() {
    let mut rng = StdRng::seed_from_u64(1);
    for (rows, d) in SIZES {
        let x = rand_vec(&mut rng, rows * d, 3.0);
        let w = rand_vec(&mut rng, d, 1.5);
        let want = reference::rms_norm(&x, &w, 1e-5);
        let mut out = vec![0.0; x.len()];
        ops::rms_norm(&x, &w, 1e-5, &mut out);
        assert_close(&out, &want, 2e-6, "rms_norm");
        let mut inplace = x.clone();
        ops::rms_norm_inplace(&mut inplace, &w, 1e-5);
        assert_close(&inplace, &want, 2e-6, "rms_norm_inplace");
    }
}

#[test]
fn gated_activations_and_add_match_reference() {
    let mut rng = StdRng::seed_from_u64(2);
    for n in [17, 1536, 70_000] {
        let gate = rand_vec(&mut rng, n, 8.0);
        let up = rand_vec(&mut rng, n, 2.0);
        let mut g = gate.clone();
        ops::silu_mul(&mut g, &up);
        let want: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(&a, &b)| reference::silu(a) * b)
            .collect();
        assert_close(&g, &want, 1e-6, "silu_mul");

        let mut g = gate.clone();
        ops::gelu_tanh_mul(&mut g, &up);
        let want: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(&a, &b)| reference::gelu_tanh(a) * b)
            .collect();
        assert_close(&g, &want, 1e-6, "gelu_tanh_mul");

        let mut s = gate.clone();
        ops::add_inplace(&mut s, &up);
        let want: Vec<f32> = gate.iter().zip(&up).map(|(a, b)| a + b).collect();
        assert_eq!(s, want, "add_inplace");

        let mut s = gate.clone();
        ops::scale_inplace(&mut s, -0.25);
        let want: Vec<f32> = gate.iter().map(|a| a * -0.25).collect();
        assert_eq!(s, want, "scale_inplace");
    }
}

#[test]
fn softmax_matches_reference() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut x = rand_vec(&mut rng, 1000, 20.0);
    let want = reference::softmax(&x);
    ops::softmax_inplace(&mut x);
    assert_close(&x, &want, 1e-5, "softmax");
    assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-5);

    let (rows, cols) = (50, 1000);
    let mut x = rand_vec(&mut rng, rows * cols, 20.0);
    let want: Vec<f32> = x.chunks(cols).flat_map(reference::softmax).collect();
    ops::softmax_rows_inplace(&mut x, cols);
    assert_close(&x, &want, 1e-5, "softmax_rows");

    let mut masked = vec![f32::NEG_INFINITY; 4];
    ops::softmax_inplace(&mut masked);
    assert_eq!(masked, vec![0.0; 4]);
}

fn rope_configs() -> Vec<(RopeConfig, usize)> {
    let mut llama3 = RopeConfig::new(128, 500_000.0, RopeMode::Normal);
    llama3.scaling = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_context: 8192,
    };
    let mut linear = RopeConfig::new(64, 1_000_000.0, RopeMode::Neox);
    linear.scaling = RopeScaling::Linear { factor: 8.0 };
    let mut ff = RopeConfig::new(32, 10_000.0, RopeMode::Normal);
    ff.freq_factors = Some((0..16).map(|i| 1.0 + i as f32 * 0.5).collect());
    vec![
        (RopeConfig::new(64, 100_000.0, RopeMode::Normal), 64),
        (RopeConfig::new(64, 10_000.0, RopeMode::Neox), 64),
        (RopeConfig::new(32, 10_000.0, RopeMode::Neox), 80),
        (llama3, 128),
        (linear, 64),
        (ff, 48),
    ]
}

#[test]
fn rope_table_matches_reference() {
    let mut rng = StdRng::seed_from_u64(4);
    for (cfg, hd) in rope_configs() {
        let table = ops::RopeTable::new(&cfg, hd).unwrap();
        for (n_heads, positions) in [
            (3, vec![0usize, 1, 2, 3]),
            (2, vec![4095, 17, 5000, 9]),
            (8, (100..164).collect::<Vec<_>>()),
        ] {
            let x = rand_vec(&mut rng, positions.len() * n_heads * hd, 1.0);
            let mut got = x.clone();
            table.apply(&mut got, &positions, n_heads, hd);
            let mut want = x.clone();
            for (t, &p) in positions.iter().enumerate() {
                let row = &mut want[t * n_heads * hd..(t + 1) * n_heads * hd];
                reference::rope(row, n_heads, hd, p, &cfg);
            }
            assert_close(&got, &want, 1e-5, &format!("rope {:?}", cfg.mode));
        }
        assert!(table.cached_positions() >= 5001);
    }
}

#[test]
fn rope_table_rejects_bad_input() {
    let cfg = RopeConfig::new(64, 10_000.0, RopeMode::Neox);
    assert!(ops::RopeTable::new(&cfg, 32).is_err());
    let table = ops::RopeTable::new(&cfg, 64).unwrap();
    let mut x = vec![1.0; 2 * 64];
    assert!(table.try_apply(&mut x, &[0, 1], 2, 64).is_err(), "length");
    assert!(table.try_apply(&mut x, &[0], 1, 128).is_err(), "head_dim");
    assert!(
        table.try_apply(&mut x, &[0, usize::MAX], 1, 64).is_err(),
        "position"
    );
    assert_eq!(x, vec![1.0; 2 * 64], "x untouched on error");
    assert!(table.try_apply(&mut x, &[0, 3], 1, 64).is_ok());
}
