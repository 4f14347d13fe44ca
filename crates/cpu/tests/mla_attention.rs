//! Absorbed MLA attention over the paged latent cache against a direct softmax reference,
//! for prefill (many queries) and decode (one query, split key range), with scattered blocks.

use marlin_cpu::attention::mla_attention;
use marlin_cpu::kv_latent::{LatentLayout, PagedLatent};

fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f32 / (1u64 << 53) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// softmax_t(scale · q_h·row_t) · row_t[..v] with rows rounded through f16 like the cache.
fn reference(
    q: &[f32],
    rows: &[Vec<f32>],
    p: usize,
    heads: usize,
    v: usize,
    scale: f32,
) -> Vec<f32> {
    let w = rows[0].len();
    let mut out = vec![0f32; heads * v];
    for h in 0..heads {
        let qh = &q[h * w..(h + 1) * w];
        let s: Vec<f64> = rows[..=p]
            .iter()
            .map(|r| {
                f64::from(scale) * qh.iter().zip(r).map(|(a, b)| f64::from(a * b)).sum::<f64>()
            })
            .collect();
        let m = s.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        for (t, r) in rows[..=p].iter().enumerate() {
            for i in 0..v {
                out[h * v + i] += (e[t] / z * f64::from(r[i])) as f32;
            }
        }
    }
    out
}

#[test]
fn prefill_and_decode_match_direct_softmax() {
    let (heads, w, v, bs) = (3, 40, 32, 4);
    let n_tok: usize = 300;
    let mut cache = PagedLatent::new(
        LatentLayout {
            block_size: bs,
            width: w,
        },
        90,
    )
    .unwrap();
    // Blocks in a scrambled order.
    let table: Vec<u32> = (0..n_tok.div_ceil(bs) as u32)
        .map(|i| (i * 7) % 89)
        .collect();
    let mut rows = Vec::new();
    for t in 0..n_tok {
        let r = noise(t as u64 + 1, w);
        cache.write(&table, t, &r).unwrap();
        let mut back = vec![0f32; w];
        cache.read(&table, t, &mut back).unwrap();
        rows.push(back);
    }
    let scale = 0.3;
    // Prefill: queries at positions 0..5 and 250..253.
    let positions: Vec<usize> = (0..5).chain(250..253).collect();
    let q = noise(999, positions.len() * heads * w);
    let mut out = vec![0f32; positions.len() * heads * v];
    mla_attention(&q, &positions, &cache, &table, heads, v, scale, &mut out).unwrap();
    for (j, &p) in positions.iter().enumerate() {
        let want = reference(
            &q[j * heads * w..(j + 1) * heads * w],
            &rows,
            p,
            heads,
            v,
            scale,
        );
        for (a, b) in out[j * heads * v..(j + 1) * heads * v].iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "prefill pos {p}: {a} vs {b}");
        }
    }
    // Decode: one query over all 300 keys (split over threads).
    let q1 = noise(5, heads * w);
    let mut o1 = vec![0f32; heads * v];
    mla_attention(&q1, &[n_tok - 1], &cache, &table, heads, v, scale, &mut o1).unwrap();
    let want = reference(&q1, &rows, n_tok - 1, heads, v, scale);
    for (a, b) in o1.iter().zip(&want) {
        assert!((a - b).abs() < 1e-4, "decode: {a} vs {b}");
    }
}

#[test]
fn bad_shapes_and_missing_blocks_are_errors() {
    let cache = PagedLatent::new(
        LatentLayout {
            block_size: 4,
            width: 8,
        },
        2,
    )
    .unwrap();
    let mut out = vec![0f32; 6];
    // q of the wrong length.
    assert!(mla_attention(&[0.0; 5], &[0], &cache, &[0], 1, 6, 1.0, &mut out).is_err());
    // v_len wider than the row.
    assert!(mla_attention(&[0.0; 8], &[0], &cache, &[0], 1, 9, 1.0, &mut [0.0; 9]).is_err());
    // Position 5 needs a second block the table lacks.
    assert!(mla_attention(&[0.0; 8], &[5], &cache, &[0], 1, 6, 1.0, &mut out).is_err());
    // A block id past the cache.
    assert!(mla_attention(&[0.0; 8], &[0], &cache, &[7], 1, 6, 1.0, &mut out).is_err());
    assert!(PagedLatent::new(
        LatentLayout {
            block_size: 0,
            width: 8
        },
        2
    )
    .is_err());
}

#[test]
fn copy_block_and_bytes_per_token() {
    let mut c = PagedLatent::new(
        LatentLayout {
            block_size: 2,
            width: 576,
        },
        3,
    )
    .unwrap();
    assert_eq!(c.bytes_per_token(), 1152);
    let row: Vec<f32> = (0..576).map(|i| i as f32 * 0.5).collect();
    c.write(&[1], 1, &row).unwrap();
    c.copy_block(1, 2).unwrap();
    let mut back = vec![0f32; 576];
    c.read(&[2], 1, &mut back).unwrap();
    assert_eq!(back, row);
    assert!(c.copy_block(1, 3).is_err());
}
