//! The fused `rope_kv` dispatch against `rope` followed by `kv_write`: roped q and the cache
//! words come out bit-identical, in both RoPE modes, f16, f32, INT8 and FP8 E4M3 caches
//! (codes and per-token-per-head scales), GQA, partial rotary dims, and v in its own buffer. Runs on lavapipe (see testkit).

mod testkit;

use marlin_core::rope::RopeMode;
use marlin_gpu::{
    read_bytes, read_f32, record_kv_write_heads, record_rope, record_rope_kv, upload_f32,
    CacheDtype, GpuContext, KvWriteIo, RopeKvIo, RopeKvShape, Span, StepEncoder,
};
use testkit::{random_vec, rng};

/// The first `n` words of `b` (pooled buffers may be longer, their tails stale).
fn words(ctx: &GpuContext, b: &wgpu::Buffer, n: usize) -> Vec<u32> {
    bytemuck::pod_collect_to_vec(&read_bytes(ctx, b, 0, n as u64 * 4).expect("read"))
}

fn case(ctx: &GpuContext, s: RopeKvShape) {
    let what = format!("{s:?}");
    let hd = s.head_dim;
    let (qd, kvd) = (s.n_heads * hd, s.n_kv_heads * hd);
    // q|k rows with a gap of 5 floats (v lives in its own buffer at the same stride).
    let stride = qd + kvd + 5;
    let mut r = rng(hd as u64 * 13 + s.n_tokens as u64);
    let x = random_vec(&mut r, s.n_tokens * stride);
    let v = random_vec(&mut r, s.n_tokens * stride);
    let cs = random_vec(&mut r, s.n_tokens * 2 * s.half);
    // Slots out of order, inside 3 blocks of 16.
    let slots: Vec<u32> = (0..s.n_tokens as u32).map(|t| (t * 7 + 3) % 48).collect();
    let cache_words = 48 * s.dtype.slot_words(s.n_kv_heads, hd);
    let u = |d: &[f32]| upload_f32(ctx, d).expect("upload");
    let (cb, vb) = (u(&cs), u(&v));
    let sb = upload_f32(ctx, bytemuck::cast_slice(&slots)).expect("slots");

    // Reference: rope in place on a copy of x, then kv_write.
    let xr = u(&x);
    let (kc0, vc0) = (u(&vec![0.0; cache_words]), u(&vec![0.0; cache_words]));
    let mut enc = StepEncoder::new(ctx, "t");
    let rope_heads = s.n_heads + s.n_kv_heads;
    let cs_span = Span::whole(&cb);
    record_rope(
        &mut enc,
        s.mode,
        cs_span,
        Span::whole(&xr),
        s.n_tokens,
        rope_heads,
        hd,
        s.half,
        stride,
    )
    .expect("rope");
    let io = KvWriteIo {
        k: Span::new(&xr, qd),
        v: Span::whole(&vb),
        src_stride: stride,
        slots: Span::whole(&sb),
        k_cache: &kc0,
        v_cache: &vc0,
    };
    record_kv_write_heads(&mut enc, &io, s.dtype, s.n_tokens, s.n_kv_heads, hd).expect("kv");
    enc.submit().expect("submit");

    // Fused.
    let xf = u(&x);
    let q_out = u(&vec![f32::NAN; s.n_tokens * qd]);
    let (kc1, vc1) = (u(&vec![0.0; cache_words]), u(&vec![0.0; cache_words]));
    let mut enc = StepEncoder::new(ctx, "t");
    let io = RopeKvIo {
        cs: cs_span,
        x: Span::whole(&xf),
        v: Span::whole(&vb),
        src_stride: stride,
        slots: Span::whole(&sb),
        q_out: &q_out,
        k_cache: &kc1,
        v_cache: &vc1,
    };
    record_rope_kv(&mut enc, &s, &io).expect("rope_kv");
    assert_eq!(enc.dispatch_count(), 1);
    enc.submit().expect("submit");

    let roped = read_f32(ctx, &xr, 0, x.len()).expect("xr");
    let want_q: Vec<u32> = (0..s.n_tokens)
        .flat_map(|t| roped[t * stride..][..qd].iter().map(|f| f.to_bits()))
        .collect();
    let got_q: Vec<u32> = read_f32(ctx, &q_out, 0, s.n_tokens * qd)
        .expect("q")
        .iter()
        .map(|f| f.to_bits())
        .collect();
    assert_eq!(got_q, want_q, "{what}: q");
    let n = cache_words;
    assert_eq!(words(ctx, &kc1, n), words(ctx, &kc0, n), "{what}: k cache");
    assert_eq!(words(ctx, &vc1, n), words(ctx, &vc0, n), "{what}: v cache");
    assert_eq!(
        read_f32(ctx, &xf, 0, x.len()).expect("x"),
        x,
        "{what}: source untouched"
    );
}

#[test]
fn fused_rope_kv_equals_rope_then_kv_write() {
    let Some(ctx) = testkit::ctx() else { return };
    let base = RopeKvShape {
        n_tokens: 3,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        half: 8,
        mode: RopeMode::Neox,
        dtype: CacheDtype::F16,
    };
    case(ctx, base);
    case(
        ctx,
        RopeKvShape {
            mode: RopeMode::Normal,
            ..base
        },
    );
    case(
        ctx,
        RopeKvShape {
            dtype: CacheDtype::F32,
            n_tokens: 1,
            ..base
        },
    );
    // Partial rotary (half < head_dim / 2), MQA, one token.
    case(
        ctx,
        RopeKvShape {
            half: 4,
            n_kv_heads: 1,
            n_tokens: 5,
            ..base
        },
    );
    case(
        ctx,
        RopeKvShape {
            half: 3,
            mode: RopeMode::Normal,
            dtype: CacheDtype::F32,
            ..base
        },
    );
    // Quantized caches: one scale per token per kv head row, half-filled code words.
    case(
        ctx,
        RopeKvShape {
            dtype: CacheDtype::Int8,
            ..base
        },
    );
    case(
        ctx,
        RopeKvShape {
            dtype: CacheDtype::Fp8E4M3,
            mode: RopeMode::Normal,
            half: 5,
            n_kv_heads: 1,
            n_tokens: 5,
            ..base
        },
    );
    case(
        ctx,
        RopeKvShape {
            dtype: CacheDtype::Int8,
            head_dim: 6,
            half: 3,
            ..base
        },
    );
}

#[test]
fn bad_rope_kv_shapes_are_errors() {
    let Some(ctx) = testkit::ctx() else { return };
    let b = upload_f32(ctx, &[0.0; 4096]).expect("b");
    let io = RopeKvIo {
        cs: Span::whole(&b),
        x: Span::whole(&b),
        v: Span::whole(&b),
        src_stride: 64,
        slots: Span::whole(&b),
        q_out: &b,
        k_cache: &b,
        v_cache: &b,
    };
    let ok = RopeKvShape {
        n_tokens: 1,
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 16,
        half: 8,
        mode: RopeMode::Neox,
        dtype: CacheDtype::F32,
    };
    let mut enc = StepEncoder::new(ctx, "t");
    for bad in [
        RopeKvShape { head_dim: 15, ..ok },
        RopeKvShape { half: 9, ..ok },
        RopeKvShape { half: 0, ..ok },
        RopeKvShape {
            n_kv_heads: 0,
            ..ok
        },
        RopeKvShape { n_tokens: 0, ..ok },
        RopeKvShape { n_heads: 8, ..ok },
    ] {
        assert!(record_rope_kv(&mut enc, &bad, &io).is_err(), "{bad:?}");
    }
}
