//! FP8 E4M3 and INT8 paged KV: round trip of one row, attention parity against f32 K/V (the
//! reference), copy-on-write of codes and scales, bytes per token, dtype names.

use marlin_core::reference;
use marlin_cpu::attention::{attention, attention_with_isa};
use marlin_cpu::kv::{KvDtype, KvLayout, PagedKv};
use marlin_cpu::matmul::Isa;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LAYOUT: KvLayout = KvLayout {
    block_size: 16,
    n_kv_heads: 2,
    head_dim: 64,
};

fn rand_vec(rng: &mut StdRng, n: usize, amp: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-amp..amp)).collect()
}

#[test]
fn round_trip_error_is_within_the_code_step() {
    let mut rng = StdRng::seed_from_u64(1);
    let row = LAYOUT.row_len();
    let (k, v) = (rand_vec(&mut rng, row, 3.0), rand_vec(&mut rng, row, 0.2));
    // Per-dtype bound relative to the head row's amax: int8 half a step (1/254), e4m3 half
    // an ulp at the top binade (2^-4 relative to 448 ≈ 1/16 of 256..448 → 16/448).
    for (dtype, rel) in [
        (KvDtype::Int8, 0.5 / 127.0),
        (KvDtype::Fp8E4M3, 16.0 / 448.0),
    ] {
        let mut kv = PagedKv::with_dtype(LAYOUT, 2, dtype).unwrap();
        assert_eq!(kv.dtype(), dtype);
        kv.write(&[1], 5, &k, &v).unwrap();
        let (mut kr, mut vr) = (vec![0.0; row], vec![0.0; row]);
        kv.read(&[1], 5, &mut kr, &mut vr).unwrap();
        for (want, got) in [(&k, &kr), (&v, &vr)] {
            for (w, g) in want.chunks(64).zip(got.chunks(64)) {
                let amax = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let err = w
                    .iter()
                    .zip(g)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    err <= amax * rel * 1.001,
                    "{dtype:?}: err {err}, amax {amax}"
                );
                assert!(err > 0.0, "{dtype:?} stored exactly?");
            }
        }
        assert!(kv.key(&[1], 5).is_err(), "no f16 view of quantized rows");
        // An all-zero row keeps scale 0 and decodes to zeros.
        kv.write(&[1], 6, &vec![0.0; row], &vec![0.0; row]).unwrap();
        kv.read(&[1], 6, &mut kr, &mut vr).unwrap();
        assert!(kr.iter().chain(&vr).all(|&x| x == 0.0));
    }
}

/// Max |Δ| of paged attention over `dtype` storage against f32 K/V, over every ISA.
fn attention_error(dtype: KvDtype, seed: u64) -> f32 {
    let mut rng = StdRng::seed_from_u64(seed);
    let (n_heads, n_ctx) = (6, 50);
    let row = LAYOUT.row_len();
    let k = rand_vec(&mut rng, n_ctx * row, 2.0);
    let v = rand_vec(&mut rng, n_ctx * row, 1.0);
    let table = [3u32, 0, 2, 1];
    let mut kv = PagedKv::with_dtype(LAYOUT, 4, dtype).unwrap();
    kv.write_tokens(&table, 0, &k, &v).unwrap();
    let q_positions = [0usize, 17, 31, 49];
    let q = rand_vec(&mut rng, q_positions.len() * n_heads * 64, 1.0);
    let scale = 1.0 / 8.0;
    let want = reference::attention(&q, &k, &v, &q_positions, n_heads, 2, 64, scale, None);
    let mut worst = 0.0f32;
    for isa in Isa::available() {
        let mut out = vec![f32::NAN; q.len()];
        attention_with_isa(
            isa,
            &q,
            &q_positions,
            &kv,
            &table,
            n_heads,
            scale,
            None,
            &mut out,
        )
        .unwrap();
        let e = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        worst = worst.max(e);
    }
    worst
}

#[test]
fn attention_matches_f32_kv() {
    let (f16, fp8, int8) = (
        attention_error(KvDtype::F16, 7),
        attention_error(KvDtype::Fp8E4M3, 7),
        attention_error(KvDtype::Int8, 7),
    );
    eprintln!("max |Δ| vs f32 KV: f16 {f16:.2e}, fp8 {fp8:.2e}, int8 {int8:.2e}");
    assert!(f16 < 2e-3, "f16 {f16}");
    assert!(int8 < 1e-2, "int8 {int8}");
    assert!(fp8 < 6e-2, "fp8 {fp8}");
    assert!(int8 > f16 && fp8 > int8, "coarser codes should cost more");
}

#[test]
fn copy_block_moves_codes_and_scales() {
    let mut rng = StdRng::seed_from_u64(3);
    let row = LAYOUT.row_len();
    for dtype in [KvDtype::Fp8E4M3, KvDtype::Int8] {
        let mut kv = PagedKv::with_dtype(LAYOUT, 3, dtype).unwrap();
        let k = rand_vec(&mut rng, 16 * row, 1.5);
        let v = rand_vec(&mut rng, 16 * row, 0.5);
        kv.write_tokens(&[1], 0, &k, &v).unwrap();
        kv.copy_block(1, 2).unwrap();
        let (mut a, mut b) = (vec![0.0; 2 * row], vec![0.0; 2 * row]);
        for pos in 0..16 {
            let (ka, va) = a.split_at_mut(row);
            kv.read(&[1], pos, ka, va).unwrap();
            let (kb, vb) = b.split_at_mut(row);
            kv.read(&[2], pos, kb, vb).unwrap();
            assert_eq!(a, b, "{dtype:?} pos {pos}");
            assert!(a.iter().any(|&x| x != 0.0));
        }
        assert!(kv.copy_block(1, 3).is_err());
        // Attention works straight off the quantized cache through the public entry point.
        let q = rand_vec(&mut rng, 2 * 64, 1.0);
        let mut out = vec![0.0; q.len()];
        attention(&q, &[15], &kv, &[2], 2, 0.125, None, &mut out).unwrap();
        assert!(out.iter().all(|x| x.is_finite()) && out.iter().any(|&x| x != 0.0));
    }
}

#[test]
fn bytes_per_token_and_names() {
    // SmolLM2-135M: 3 kv heads × 64; Llama-3-8B: 8 × 128.
    assert_eq!(KvDtype::F16.bytes_per_token(3, 64), 768);
    assert_eq!(KvDtype::Fp8E4M3.bytes_per_token(3, 64), 408);
    assert_eq!(KvDtype::Int8.bytes_per_token(3, 64), 408);
    assert_eq!(KvDtype::F16.bytes_per_token(8, 128), 4096);
    assert_eq!(KvDtype::Int8.bytes_per_token(8, 128), 2112);
    assert_eq!(KvDtype::parse("fp8").unwrap(), KvDtype::Fp8E4M3);
    assert_eq!(KvDtype::parse("INT8").unwrap(), KvDtype::Int8);
    assert_eq!(KvDtype::parse("f16").unwrap(), KvDtype::F16);
    assert!(KvDtype::parse("int4").is_err());
}
