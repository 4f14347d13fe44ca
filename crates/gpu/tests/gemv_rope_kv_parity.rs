//! `gemv_norm_rope_kv` (one token's q|k|v GEMV with RoPE and the f16 cache write folded
//! into its output) against the two dispatches it replaces, `gemv_norm` then `rope_kv`: the
//! roped q, every cache word, and that nothing else of the caches is touched. Formats cover
//! the plain, subgroup and Dp4a bodies; head sizes with partial rotation (dims past 2 · half
//! pass through); a weight in several chunks. Runs on lavapipe (testkit).

mod testkit;

use half::f16;
use marlin_core::rope::RopeMode;
use marlin_core::QuantFormat;
use marlin_gpu::{
    norm_with_eps, read_bytes, read_f32, record_gemv_fused, record_rope_kv, upload_f32, CacheDtype,
    GemvFuse, GpuContext, GpuWeight, MatmulIo, RopeKvIo, RopeKvOut, RopeKvShape, Span, StepEncoder,
};
use testkit::{nmse, random_vec, random_weight, rng};

fn f16s(ctx: &GpuContext, b: &marlin_gpu::wgpu::Buffer) -> Vec<f32> {
    read_bytes(ctx, b, 0, b.size())
        .expect("read cache")
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

/// (q NMSE, k cache NMSE, v cache NMSE) of the fused GEMV against gemv_norm + rope_kv.
fn case(
    fmt: QuantFormat,
    (nh, nkv, hd, half): (usize, usize, usize, usize),
    chunk_rows: usize,
) -> [f64; 3] {
    let ctx = testkit::ctx().expect("ctx");
    let (qd, kvd, cols) = (nh * hd, nkv * hd, 256);
    let rows = qd + 2 * kvd;
    let t = random_weight(fmt, rows, cols, (rows + hd) as u64);
    // Chunks of `chunk_rows` rows (the upload keeps 32 bytes of slack per chunk).
    let chunk = (chunk_rows * t.row_bytes() + 32) as u64;
    let w = GpuWeight::upload_chunked(ctx, &t, chunk).expect("upload");
    let mut r = rng(hd as u64);
    let x = upload_f32(ctx, &random_vec(&mut r, cols)).expect("x");
    let gain = random_vec(&mut r, cols);
    let norm = upload_f32(ctx, &norm_with_eps(&gain, 1e-5)).expect("norm");
    // RoPE row of the token (position 37), then the words: slot at 2, record at 4.
    let cs: Vec<f32> = (0..half)
        .map(|i| (37.0 * 0.1 * i as f32).cos())
        .chain((0..half).map(|i| (37.0 * 0.1 * i as f32).sin()))
        .collect();
    let csb = upload_f32(ctx, &cs).expect("cs");
    let slot = 5u32;
    let words = [
        0,
        0,
        slot,
        0,
        qd as u32,
        kvd as u32,
        hd as u32,
        half as u32,
        0,
        2,
    ];
    let wb = upload_f32(ctx, bytemuck::cast_slice(&words)).expect("words");
    let slots = 8;
    let cache = |seed: u64| {
        let v = random_vec(&mut rng(seed), slots * kvd / 2);
        upload_f32(ctx, &v).expect("cache")
    };
    let (k_ref, v_ref, k_got, v_got) = (cache(1), cache(2), cache(1), cache(2));

    // Reference: gemv_norm into q|k|v, then rope_kv.
    let qkv = upload_f32(ctx, &vec![0.0; rows]).expect("qkv");
    let q_ref = upload_f32(ctx, &vec![0.0; qd]).expect("q");
    let mut enc = StepEncoder::new(ctx, "reference");
    record_gemv_fused(
        &mut enc,
        &w,
        &MatmulIo::new(&x, &qkv, 1),
        GemvFuse::Norm(&norm),
    )
    .expect("gemv_norm");
    let shape = RopeKvShape {
        n_tokens: 1,
        n_heads: nh,
        n_kv_heads: nkv,
        head_dim: hd,
        half,
        mode: RopeMode::Normal,
        dtype: CacheDtype::F16,
    };
    let io = RopeKvIo {
        cs: Span::whole(&csb),
        x: Span::whole(&qkv),
        v: Span::new(&qkv, qd + kvd),
        src_stride: rows,
        slots: Span::new(&wb, 2),
        q_out: &q_ref,
        k_cache: &k_ref,
        v_cache: &v_ref,
    };
    record_rope_kv(&mut enc, &shape, &io).expect("rope_kv");
    enc.submit().expect("submit");

    // Fused.
    let out = upload_f32(ctx, &vec![f32::NAN; rows]).expect("out");
    let rope = RopeKvOut {
        cs: &csb,
        words: &wb,
        record: 4,
        k_cache: &k_got,
        v_cache: &v_got,
        qkv_rows: rows,
    };
    let mut enc = StepEncoder::new(ctx, "fused");
    let fuse = GemvFuse::NormRopeKv {
        norm: &norm,
        rope: &rope,
    };
    record_gemv_fused(&mut enc, &w, &MatmulIo::new(&x, &out, 1), fuse).expect("fused");
    assert_eq!(
        enc.dispatch_count() as usize,
        w.chunks.len(),
        "one dispatch per chunk"
    );
    enc.submit().expect("submit");

    let got_q = read_f32(ctx, &out, 0, rows).expect("q");
    let want_q = read_f32(ctx, &q_ref, 0, qd).expect("q ref");
    assert!(
        got_q[qd..].iter().all(|v| v.is_nan()),
        "k|v rows of out untouched"
    );
    let (kg, kw) = (f16s(ctx, &k_got), f16s(ctx, &k_ref));
    let (vg, vw) = (f16s(ctx, &v_got), f16s(ctx, &v_ref));
    // Slots other than the token's keep their contents bit for bit.
    let raw = |b| read_bytes(ctx, b, 0, (slots * kvd * 2) as u64).expect("raw");
    let other = |a: Vec<u8>, b: Vec<u8>| {
        (0..slots)
            .filter(|&s| s != slot as usize)
            .all(|s| a[s * kvd * 2..(s + 1) * kvd * 2] == b[s * kvd * 2..(s + 1) * kvd * 2])
    };
    assert!(other(raw(&k_got), raw(&k_ref)), "other k slots untouched");
    assert!(other(raw(&v_got), raw(&v_ref)), "other v slots untouched");
    let at = slot as usize * kvd..(slot as usize + 1) * kvd;
    [
        nmse(&got_q[..qd], &want_q),
        nmse(&kg[at.clone()], &kw[at.clone()]),
        nmse(&vg[at.clone()], &vw[at]),
    ]
}

#[test]
fn gemv_norm_rope_kv_equals_gemv_norm_then_rope_kv() {
    if testkit::ctx().is_none() {
        return;
    }
    for name in ["f32", "f16", "q4_0", "q8_0", "q4_k"] {
        let fmt = QuantFormat::from_name(name).expect("format");
        // Full rotation with GQA, and partial rotation (dims 12..16 pass through) in a weight
        // cut into chunks of whole row pairs.
        for (dims, chunk_rows) in [((4, 2, 16, 8), 1 << 20), ((2, 1, 16, 6), 16)] {
            let e = case(fmt, dims, chunk_rows);
            eprintln!("gemv_norm_rope_kv {name} {dims:?}: q / k / v nmse {e:?}");
            // The same GEMV sums and RoPE products: at most f16 neighbours apart.
            assert!(e.iter().all(|&v| v < 1e-8), "{name} {dims:?}: {e:?}");
        }
    }
}

#[test]
fn gemv_norm_rope_kv_rejects_a_mismatched_projection() {
    let Some(ctx) = testkit::ctx() else { return };
    let t = random_weight(QuantFormat::F32, 64, 256, 3);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let b = upload_f32(ctx, &vec![0.0; 1024]).expect("buf");
    let rope = RopeKvOut {
        cs: &b,
        words: &b,
        record: 4,
        k_cache: &b,
        v_cache: &b,
        qkv_rows: 96,
    };
    let mut enc = StepEncoder::new(ctx, "bad");
    let fuse = GemvFuse::NormRopeKv {
        norm: &b,
        rope: &rope,
    };
    let r = record_gemv_fused(&mut enc, &w, &MatmulIo::new(&b, &b, 1), fuse);
    assert!(r.is_err(), "64 rows for a q|k|v of 96");
    // A chunk starting at an odd row would split a pair between two dispatches.
    let odd = GpuWeight::upload_chunked(ctx, &t, (15 * t.row_bytes() + 32) as u64).expect("odd");
    let rope = RopeKvOut {
        qkv_rows: 64,
        ..rope
    };
    let fuse = GemvFuse::NormRopeKv {
        norm: &b,
        rope: &rope,
    };
    let r = record_gemv_fused(&mut enc, &odd, &MatmulIo::new(&b, &b, 1), fuse);
    assert!(r.is_err(), "chunks of 15 rows");
    assert_eq!(enc.dispatch_count(), 0);
}
