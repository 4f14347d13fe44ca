//! RoPE config (frequencies, Llama-3 scaling, conventions) and the reference oracle's ops
//! checked against hand-computed values.

use marlin_core::reference;
use marlin_core::rope::{RopeConfig, RopeMode, RopeScaling};

fn close(a: f32, b: f32, rel: f32) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-30)
}

fn llama31() -> RopeConfig {
    let mut c = RopeConfig::new(128, 500_000.0, RopeMode::Normal);
    c.scaling = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_context: 8192,
    };
    c
}

#[test]
fn plain_inv_freqs() {
    let f = RopeConfig::new(4, 10_000.0, RopeMode::Neox).inv_freqs();
    assert_eq!(f.len(), 2);
    assert!(close(f[0], 1.0, 1e-7) && close(f[1], 0.01, 1e-6), "{f:?}");
}

#[test]
fn llama3_scaling_matches_hand_computed_values() {
    // (i, scaled inv_freq): i ≤ 28 high frequency (kept), 29..=34 smoothed, ≥ 35 divided by 8.
    // E.g. i = 30: f = 5e5^(-60/128) = 0.00213112, wavelen 2948.3,
    // s = (8192/2948.3 - 1)/3 = 0.592851, (1-s)·f/8 + s·f = 0.00137189.
    let expect = [
        (0, 1.0),
        (20, 0.016_560_44),
        (29, 0.002_166_570_8),
        (30, 0.001_371_893_6),
        (32, 0.000_524_846_2),
        (34, 0.000_178_507_8),
        (35, 9.556_212e-5),
        (40, 3.428_102e-5),
        (63, 3.068_926e-7),
    ];
    let f = llama31().inv_freqs();
    assert_eq!(f.len(), 64);
    for (i, want) in expect {
        assert!(close(f[i], want, 2e-6), "i={i}: {} vs {want}", f[i]);
    }
}

#[test]
fn linear_scaling_divides_positions() {
    let plain = RopeConfig::new(8, 10_000.0, RopeMode::Neox);
    let mut lin = plain.clone();
    lin.scaling = RopeScaling::Linear { factor: 4.0 };
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let (mut a, mut b) = (x.clone(), x);
    reference::rope(&mut a, 2, 8, 8, &lin);
    reference::rope(&mut b, 2, 8, 2, &plain);
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() < 1e-6, "{u} vs {v}");
    }
}

#[test]
fn freq_factors_divide_frequencies() {
    let mut c = RopeConfig::new(4, 10_000.0, RopeMode::Normal);
    c.freq_factors = Some(vec![2.0, 4.0]);
    let f = c.inv_freqs();
    assert!(close(f[0], 0.5, 1e-7) && close(f[1], 0.0025, 1e-6), "{f:?}");
}

#[test]
fn validate_rejects_bad_configs() {
    assert!(RopeConfig::new(64, 1e4, RopeMode::Neox)
        .validate(64)
        .is_ok());
    assert!(RopeConfig::new(63, 1e4, RopeMode::Neox)
        .validate(64)
        .is_err());
    assert!(RopeConfig::new(0, 1e4, RopeMode::Neox)
        .validate(64)
        .is_err());
    assert!(RopeConfig::new(128, 1e4, RopeMode::Neox)
        .validate(64)
        .is_err());
    assert!(RopeConfig::new(64, -1.0, RopeMode::Neox)
        .validate(64)
        .is_err());
    let mut c = RopeConfig::new(64, 1e4, RopeMode::Neox);
    c.freq_factors = Some(vec![1.0; 31]);
    assert!(c.validate(64).is_err());
    let mut c = llama31();
    c.scaling = RopeScaling::Linear { factor: 0.0 };
    assert!(c.validate(128).is_err());
}

#[test]
fn rope_rotates_by_pos_times_frequency() {
    let cfg = RopeConfig::new(2, 10_000.0, RopeMode::Normal);
    let mut x = vec![1.0, 0.0];
    reference::rope(&mut x, 1, 2, 1, &cfg);
    assert!(
        close(x[0], 1f32.cos(), 1e-6) && close(x[1], 1f32.sin(), 1e-6),
        "{x:?}"
    );
    let mut y = vec![0.3, -0.7];
    reference::rope(&mut y, 1, 2, 0, &cfg);
    assert_eq!(y, vec![0.3, -0.7], "position 0 is the identity");
}

#[test]
fn partial_rotary_leaves_tail_untouched() {
    let cfg = RopeConfig::new(4, 10_000.0, RopeMode::Neox);
    let x: Vec<f32> = (1..=16).map(|i| i as f32).collect();
    let mut y = x.clone();
    reference::rope(&mut y, 2, 8, 5, &cfg);
    for h in 0..2 {
        assert_eq!(&y[h * 8 + 4..h * 8 + 8], &x[h * 8 + 4..h * 8 + 8]);
        assert_ne!(&y[h * 8..h * 8 + 4], &x[h * 8..h * 8 + 4]);
    }
}

#[test]
fn neox_on_deinterleaved_vector_equals_normal() {
    // Neox pairs (i, i + n/2); Normal pairs (2i, 2i+1). With x'[i] = x[2i] and
    // x'[i + n/2] = x[2i + 1], Neox(x') is the same permutation of Normal(x).
    let (hd, n_heads, n_rot) = (16, 2, 12);
    let perm = |v: &[f32]| -> Vec<f32> {
        let mut out = v.to_vec();
        for h in 0..n_heads {
            let head = &v[h * hd..(h + 1) * hd];
            for i in 0..n_rot / 2 {
                out[h * hd + i] = head[2 * i];
                out[h * hd + i + n_rot / 2] = head[2 * i + 1];
            }
        }
        out
    };
    let x: Vec<f32> = (0..hd * n_heads).map(|i| (i as f32 * 1.7).cos()).collect();
    for pos in [0, 1, 7, 300] {
        let mut normal = x.clone();
        reference::rope(
            &mut normal,
            n_heads,
            hd,
            pos,
            &RopeConfig::new(n_rot, 1e4, RopeMode::Normal),
        );
        let mut neox = perm(&x);
        reference::rope(
            &mut neox,
            n_heads,
            hd,
            pos,
            &RopeConfig::new(n_rot, 1e4, RopeMode::Neox),
        );
        let expect = perm(&normal);
        for (a, b) in neox.iter().zip(&expect) {
            assert!((a - b).abs() < 1e-6, "pos {pos}: {a} vs {b}");
        }
    }
}

#[test]
fn scalar_ops_hand_values() {
    assert_eq!(reference::silu(0.0), 0.0);
    assert!(close(reference::silu(1.0), 0.731_058_6, 1e-6));
    assert!(close(reference::silu(-2.0), -0.238_405_84, 1e-6));
    assert!(close(reference::gelu_tanh(1.0), 0.841_192, 1e-6));
    assert!(close(reference::gelu_tanh(-2.0), -0.045_402_306, 1e-5));
    let s = reference::softmax(&[1.0, 2.0, 3.0]);
    let want = [0.090_030_57, 0.244_728_47, 0.665_240_96];
    assert!(s.iter().zip(want).all(|(&a, b)| close(a, b, 1e-6)), "{s:?}");
}

#[test]
fn matmul_and_rms_norm_hand_values() {
    // W = [[1,2,3],[4,5,6]], x rows [1,0,-1] and [2,1,0].
    let y = reference::matmul(
        &[1., 2., 3., 4., 5., 6.],
        &[1., 0., -1., 2., 1., 0.],
        2,
        3,
        2,
    );
    assert_eq!(y, vec![-2.0, -2.0, 4.0, 13.0]);
    let n = reference::rms_norm(&[1., 2., 3., 4., 2., 2., 2., 2.], &[1., 1., 1., 2.], 1e-5);
    let want = [
        0.365_148_1,
        0.730_296_3,
        1.095_444_4,
        2.921_185,
        1.0,
        1.0,
        1.0,
        2.0,
    ];
    for (a, b) in n.iter().zip(want) {
        assert!(close(*a, b, 1e-5), "{n:?}");
    }
}

#[test]
fn reference_attention_small_cases() {
    // 1 kv head, hd 2; keys at positions 0..3; two query heads share the kv head.
    let k = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
    let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    // Query at position 0 sees only key 0: output = v0 for both heads.
    let o = reference::attention(&[5.0, 5.0, -1.0, 2.0], &k, &v, &[0], 2, 1, 2, 1.0, None);
    assert_eq!(o, vec![1.0, 2.0, 1.0, 2.0]);
    // A zero query weights keys 0..=2 equally: mean of v.
    let o = reference::attention(&[0.0, 0.0], &k, &v, &[2], 1, 1, 2, 1.0, None);
    assert!(close(o[0], 3.0, 1e-6) && close(o[1], 4.0, 1e-6), "{o:?}");
    // Window 2 at position 2 sees keys 1 and 2 only.
    let o = reference::attention(&[0.0, 0.0], &k, &v, &[2], 1, 1, 2, 1.0, Some(2));
    assert!(close(o[0], 4.0, 1e-6) && close(o[1], 5.0, 1e-6), "{o:?}");
    // Scores 0 and ln 3 (scale): weights 1/4, 3/4.
    let s = 3f32.ln();
    let o = reference::attention(&[0.0, 1.0], &k, &v, &[1], 1, 1, 2, s, None);
    assert!(close(o[0], 2.5, 1e-6) && close(o[1], 3.5, 1e-6), "{o:?}");
}
