//! Split-K decode attention (`attn_split` + `attn_combine`) against the f64 reference at
//! long contexts: GQA, f16 and f32 caches, sliding windows, queries of different lengths,
//! and the same inputs through the single-pass kernel. Runs on lavapipe (testkit).

mod testkit;

use half::f16;
use marlin_core::reference;
use marlin_gpu::{
    attn_partial_len, attn_splits, read_f32, record_attention, record_attention_split,
    record_kv_write, storage_f32, upload_f32, AttnShape, CacheDtype, GpuContext, Span, StepEncoder,
    ATTN_SPLIT_MIN_KEYS,
};
use testkit::{assert_sentinels, guarded, nmse, random_vec, rng, KvRows, GUARD};

struct Case {
    dtype: CacheDtype,
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    n_pos: usize,
    q_pos: Vec<usize>,
    window: Option<usize>,
}

/// Writes K/V of `n_pos` positions through a reversed block table, attends `q_pos` in
/// `splits` parts (1 = the single-pass kernel); returns the NMSE against the reference.
fn run(ctx: &GpuContext, c: &Case, splits: usize) -> f64 {
    let row = c.n_kv * c.hd;
    let mut r = rng((c.hd * 7 + c.n_pos) as u64);
    let mut k = random_vec(&mut r, c.n_pos * row);
    let mut v = random_vec(&mut r, c.n_pos * row);
    if c.dtype == CacheDtype::F16 {
        for x in k.iter_mut().chain(v.iter_mut()) {
            *x = f16::from_f32(*x).to_f32();
        }
    }
    // Large queries sharpen the softmax, so partial maxima differ a lot between splits.
    let q: Vec<f32> = random_vec(&mut r, c.q_pos.len() * c.n_heads * c.hd)
        .iter()
        .map(|x| x * 4.0)
        .collect();
    let scale = 1.0 / (c.hd as f32).sqrt();
    let want = reference::attention(
        &q, &k, &v, &c.q_pos, c.n_heads, c.n_kv, c.hd, scale, c.window,
    );
    let n_blocks = c.n_pos.div_ceil(16) + 1;
    let table: Vec<u32> = (0..c.n_pos.div_ceil(16))
        .map(|b| (n_blocks - 1 - b) as u32)
        .collect();
    let slots: Vec<u32> = (0..c.n_pos)
        .map(|p| table[p / 16] * 16 + (p % 16) as u32)
        .collect();
    let t_off = 2 * c.q_pos.len();
    let mut meta: Vec<u32> = c
        .q_pos
        .iter()
        .flat_map(|&p| [p as u32, t_off as u32])
        .collect();
    meta.extend_from_slice(&table);
    let u32_buf = |v: &[u32]| upload_f32(ctx, bytemuck::cast_slice(v)).expect("u32");
    let words = c.dtype.words(n_blocks * 16 * row);
    let kc = upload_f32(ctx, &vec![0.0; words]).expect("kc");
    let vc = upload_f32(ctx, &vec![0.0; words]).expect("vc");
    let rows = KvRows::upload(ctx, &k, &v, &slots, row);
    let mb = u32_buf(&meta);
    let qb = upload_f32(ctx, &q).expect("q");
    let ob = upload_f32(ctx, &guarded(q.len())).expect("out");
    let mut enc = StepEncoder::new(ctx, "t");
    record_kv_write(&mut enc, &rows.io(&kc, &vc), c.dtype, c.n_pos, row).expect("kv write");
    let shape = AttnShape {
        n_tokens: c.q_pos.len(),
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv,
        head_dim: c.hd,
        q_stride: c.n_heads * c.hd,
        scale,
        window: c.window,
        dtype: c.dtype,
    };
    let (qs, ms, os) = (Span::whole(&qb), Span::whole(&mb), Span::new(&ob, GUARD));
    if splits == 1 {
        record_attention(&mut enc, &shape, qs, &kc, &vc, ms, os).expect("attn");
    } else {
        let max_keys = c
            .q_pos
            .iter()
            .map(|&p| c.window.map_or(p + 1, |w| w.min(p + 1)))
            .max()
            .unwrap_or(1);
        let part = storage_f32(ctx, attn_partial_len(&shape, splits)).expect("part");
        record_attention_split(
            &mut enc, &shape, splits, max_keys, qs, &kc, &vc, ms, &part, os,
        )
        .expect("split");
        assert_eq!(enc.dispatch_count(), 3, "kv_write, split, combine");
    }
    enc.submit().expect("submit");
    let all = read_f32(ctx, &ob, 0, q.len() + 2 * GUARD).expect("read");
    assert_sentinels(
        &all,
        (0..GUARD).chain(GUARD + q.len()..all.len()),
        "attn out",
    );
    nmse(&all[GUARD..GUARD + q.len()], &want)
}

#[test]
fn split_attention_matches_reference_at_long_contexts() {
    let Some(ctx) = testkit::ctx() else { return };
    let cases = [
        Case {
            dtype: CacheDtype::F16,
            n_heads: 4,
            n_kv: 2,
            hd: 32,
            n_pos: 1500,
            q_pos: vec![1499],
            window: None,
        },
        Case {
            dtype: CacheDtype::F32,
            n_heads: 2,
            n_kv: 1,
            hd: 16,
            n_pos: 2000,
            q_pos: vec![1999, 700, 40],
            window: None,
        },
        Case {
            dtype: CacheDtype::F16,
            n_heads: 2,
            n_kv: 2,
            hd: 64,
            n_pos: 1800,
            q_pos: vec![1799, 1200],
            window: Some(900),
        },
    ];
    for c in &cases {
        let what = format!(
            "{:?} h{}/{} hd{} {:?} w{:?}",
            c.dtype, c.n_heads, c.n_kv, c.hd, c.q_pos, c.window
        );
        let longest = c.window.unwrap_or(c.n_pos).min(c.n_pos);
        let auto = attn_splits(longest, c.q_pos.len(), c.n_heads, ATTN_SPLIT_MIN_KEYS);
        assert!(auto > 1, "{what}: {longest} keys should split");
        for splits in [1, 2, auto, 64] {
            let e = run(ctx, c, splits);
            assert!(e < 1e-11, "{what}, {splits} splits: nmse {e:e}");
        }
    }
}

#[test]
fn short_contexts_keep_the_single_pass() {
    let min = ATTN_SPLIT_MIN_KEYS;
    assert_eq!(attn_splits(min, 1, 32, min), 1);
    assert_eq!(
        attn_splits(300, 1, 4, 64),
        2,
        "a lowered threshold, 128+ keys a split"
    );
    let wide = attn_splits(100_000, 256, 32, min);
    assert_eq!(wide, 1, "wide batches fill the GPU already");
    assert_eq!(attn_splits(4096, 1, 32, min), 16, "512 workgroups");
    assert_eq!(attn_splits(1 << 20, 1, 8, min), 64);
    assert_eq!(attn_splits(1000, 1, 8, min), 7, "at least 128 keys a split");
}

#[test]
fn bad_split_counts_are_errors() {
    let Some(ctx) = testkit::ctx() else { return };
    let b = storage_f32(ctx, 4096).expect("buf");
    let shape = AttnShape {
        n_tokens: 1,
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 16,
        q_stride: 32,
        scale: 1.0,
        window: None,
        dtype: CacheDtype::F32,
    };
    let s = Span::whole(&b);
    let mut enc = StepEncoder::new(ctx, "t");
    for (splits, keys) in [(0, 100), (65, 100), (4, 0)] {
        let r = record_attention_split(&mut enc, &shape, splits, keys, s, &b, &b, s, &b, s);
        assert!(r.is_err(), "{splits} splits of {keys}");
    }
    let small = storage_f32(ctx, 10).expect("small");
    let r = record_attention_split(&mut enc, &shape, 4, 1000, s, &b, &b, s, &small, s);
    assert!(r.is_err(), "partials too small");
}
