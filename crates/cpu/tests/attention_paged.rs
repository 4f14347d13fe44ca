//! Paged CPU attention against `reference::attention`: prefill and decode, GQA, head dims,
//! sliding windows, shuffled block tables, split-K on a wide thread pool, bad input.

use half::f16;
use marlin_core::reference;
use marlin_cpu::attention::{attention, attention_with_isa};
use marlin_cpu::kv::{KvLayout, PagedKv};
use marlin_cpu::matmul::Isa;
use marlin_cpu::Error;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

struct Case {
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    n_ctx: usize,
    q_positions: Vec<usize>,
    window: Option<usize>,
}

fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Runs one case through the paged cache (every kernel family this CPU has) and the
/// reference; returns the max abs error.
fn run_case(rng: &mut StdRng, c: &Case) -> f32 {
    let layout = KvLayout {
        block_size: 16,
        n_kv_heads: c.n_kv,
        head_dim: c.hd,
    };
    let n_blocks = c.n_ctx.div_ceil(16);
    let pool = n_blocks * 2 + 3;
    let mut ids: Vec<u32> = (0..pool as u32).collect();
    ids.shuffle(rng);
    let table = &ids[..n_blocks];

    let row = c.n_kv * c.hd;
    // The cache stores f16, so the reference sees the same rounded values.
    let round =
        |v: Vec<f32>| -> Vec<f32> { v.iter().map(|&x| f16::from_f32(x).to_f32()).collect() };
    let k = round(rand_vec(rng, c.n_ctx * row));
    let v = round(rand_vec(rng, c.n_ctx * row));
    let mut kv = PagedKv::new(layout, pool);
    kv.write_tokens(table, 0, &k, &v).unwrap();

    let n_q = c.q_positions.len();
    let q = rand_vec(rng, n_q * c.n_heads * c.hd);
    let scale = 1.0 / (c.hd as f32).sqrt();
    let want = reference::attention(
        &q,
        &k,
        &v,
        &c.q_positions,
        c.n_heads,
        c.n_kv,
        c.hd,
        scale,
        c.window,
    );
    let mut worst = 0.0f32;
    for isa in Isa::available() {
        let mut out = vec![f32::NAN; q.len()];
        attention_with_isa(
            isa,
            &q,
            &c.q_positions,
            &kv,
            table,
            c.n_heads,
            scale,
            c.window,
            &mut out,
        )
        .unwrap();
        let err = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        worst = worst.max(err);
    }
    worst
}

#[test]
fn prefill_matches_reference_across_shapes() {
    let mut rng = StdRng::seed_from_u64(10);
    let shapes = [(4, 4, 64), (6, 2, 80), (8, 2, 128), (9, 3, 64)];
    for (n_heads, n_kv, hd) in shapes {
        for (prefix, n_q) in [(0, 1), (0, 17), (0, 40), (5, 1), (7, 33), (30, 40)] {
            let case = Case {
                n_heads,
                n_kv,
                hd,
                n_ctx: prefix + n_q,
                q_positions: (prefix..prefix + n_q).collect(),
                window: None,
            };
            let err = run_case(&mut rng, &case);
            assert!(
                err < 2e-5,
                "H{n_heads}/{n_kv} hd{hd} prefix {prefix} n_q {n_q}: {err}"
            );
        }
    }
}

#[test]
fn decode_long_context_matches_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    for (n_heads, n_kv, hd) in [(4, 4, 64), (6, 2, 80), (8, 2, 128), (4, 1, 64)] {
        let case = Case {
            n_heads,
            n_kv,
            hd,
            n_ctx: 300,
            q_positions: vec![299],
            window: None,
        };
        let err = run_case(&mut rng, &case);
        assert!(err < 2e-5, "decode H{n_heads}/{n_kv} hd{hd}: {err}");
    }
}

#[test]
fn split_k_on_a_wide_pool_matches_reference() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(16)
        .build()
        .unwrap();
    pool.install(|| {
        let mut rng = StdRng::seed_from_u64(12);
        for (n_ctx, window) in [(300, None), (1000, None), (700, Some(400)), (45, None)] {
            let case = Case {
                n_heads: 3,
                n_kv: 1,
                hd: 64,
                n_ctx,
                q_positions: vec![n_ctx - 1],
                window,
            };
            let err = run_case(&mut rng, &case);
            assert!(err < 2e-5, "split-K ctx {n_ctx} window {window:?}: {err}");
        }
    });
}

#[test]
fn sliding_window_matches_reference() {
    let mut rng = StdRng::seed_from_u64(13);
    for window in [1, 5, 16, 40, 1000] {
        for (prefix, n_q) in [(0, 40), (50, 1), (20, 30)] {
            let case = Case {
                n_heads: 4,
                n_kv: 2,
                hd: 64,
                n_ctx: prefix + n_q,
                q_positions: (prefix..prefix + n_q).collect(),
                window: Some(window),
            };
            let err = run_case(&mut rng, &case);
            assert!(
                err < 2e-5,
                "window {window} prefix {prefix} n_q {n_q}: {err}"
            );
        }
    }
}

#[test]
fn unordered_and_repeated_query_positions() {
    let mut rng = StdRng::seed_from_u64(14);
    let case = Case {
        n_heads: 4,
        n_kv: 1,
        hd: 80,
        n_ctx: 70,
        q_positions: vec![69, 3, 40, 40, 0, 16, 15],
        window: None,
    };
    assert!(run_case(&mut rng, &case) < 2e-5);
}

#[test]
fn zero_window_gives_zeros() {
    let layout = KvLayout {
        block_size: 16,
        n_kv_heads: 1,
        head_dim: 8,
    };
    let kv = PagedKv::new(layout, 1);
    let mut out = vec![1.0; 8];
    attention(&[1.0; 8], &[3], &kv, &[0], 1, 1.0, Some(0), &mut out).unwrap();
    assert_eq!(out, vec![0.0; 8]);
}

#[test]
fn bad_input_is_an_error() {
    let layout = KvLayout {
        block_size: 16,
        n_kv_heads: 2,
        head_dim: 8,
    };
    let kv = PagedKv::new(layout, 2);
    let q = vec![0.5; 4 * 8];
    let mut out = vec![0.0; 4 * 8];
    let table = [1u32, 0];
    assert!(attention(&q, &[31], &kv, &table, 4, 1.0, None, &mut out).is_ok());
    assert!(matches!(
        attention(&q, &[32], &kv, &table, 4, 1.0, None, &mut out),
        Err(Error::MissingBlock { pos: 32, .. })
    ));
    assert!(matches!(
        attention(&q, &[20], &kv, &[1, 5], 4, 1.0, None, &mut out),
        Err(Error::BlockOutOfRange { id: 5, .. })
    ));
    // With a window, blocks before the window are never read, so need not be valid.
    assert!(attention(&q, &[20], &kv, &[99, 0], 4, 1.0, Some(4), &mut out).is_ok());
    assert!(matches!(
        attention(&q, &[3], &kv, &table, 3, 1.0, None, &mut out[..24]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        attention(&q, &[3, 4], &kv, &table, 4, 1.0, None, &mut out),
        Err(Error::Shape { .. })
    ));
}
