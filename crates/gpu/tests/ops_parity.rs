//! Parity of the forward-pass kernels (rms_norm, rope, gated activations, add,
//! kv_write + attn_paged, argmax) against `marlin_core::reference`, with guard regions
//! around every output. Runs on lavapipe (see testkit for the skip rule).

mod testkit;

use half::f16;
use marlin_core::reference;
use marlin_core::rope::{RopeConfig, RopeMode};
use marlin_gpu::{
    read_bytes, read_f32, record_add, record_add_rms_norm, record_argmax, record_attention,
    record_gate_mul, record_kv_write, record_rms_norm, record_rms_norm_grouped, record_rope,
    upload_f32, AttnShape, CacheDtype, GateAct, GpuContext, KvWriteIo, Span, StepEncoder,
};
use testkit::{
    assert_sentinels, guarded, nmse, out_buf, random_vec, read_guarded, rng, u32_buf, GUARD,
};

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn rms_norm_matches_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    for (rows, cols) in [(3, 100), (5, 576), (1, 4)] {
        let mut r = rng(rows as u64 * 31 + cols as u64);
        let x = random_vec(&mut r, rows * cols);
        let w = random_vec(&mut r, cols);
        let want = reference::rms_norm(&x, &w, 1e-6);
        let xb = upload_f32(ctx, &x).expect("x");
        let mut wh = vec![9.0; 3];
        wh.extend_from_slice(&w);
        let wb = upload_f32(ctx, &wh).expect("w");
        let ob = out_buf(ctx, rows * cols);
        let mut enc = StepEncoder::new(ctx, "t");
        record_rms_norm(
            &mut enc,
            Span::new(&wb, 3),
            Span::whole(&xb),
            Span::new(&ob, GUARD),
            rows,
            cols,
            1e-6,
        )
        .expect("record");
        enc.submit().expect("submit");
        let got = read_guarded(ctx, &ob, rows * cols, "rms_norm");
        assert!(
            nmse(&got, &want) < 1e-12,
            "[{rows}x{cols}] {}",
            nmse(&got, &want)
        );
    }
}

/// Heads of an interleaved row: 2 tokens × 3 heads of 16, token rows 64 floats apart; the
/// gap (the rest of each row) keeps its sentinels.
#[test]
fn grouped_rms_norm_keeps_the_gaps() {
    let Some(ctx) = testkit::ctx() else { return };
    let (tokens, heads, cols, stride) = (2, 3, 16, 64);
    let len = (tokens - 1) * stride + heads * cols;
    let x = random_vec(&mut rng(5), len);
    let w = random_vec(&mut rng(6), cols);
    let xb = upload_f32(ctx, &x).expect("x");
    let wb = upload_f32(ctx, &w).expect("w");
    let ob = out_buf(ctx, len);
    let mut enc = StepEncoder::new(ctx, "t");
    record_rms_norm_grouped(
        &mut enc,
        Span::whole(&wb),
        Span::whole(&xb),
        Span::new(&ob, GUARD),
        tokens * heads,
        cols,
        1e-6,
        heads,
        stride,
    )
    .expect("record");
    enc.submit().expect("submit");
    let got = read_guarded(ctx, &ob, len, "grouped rms_norm");
    for t in 0..tokens {
        let row = &x[t * stride..t * stride + heads * cols];
        let want = reference::rms_norm(row, &w, 1e-6);
        let g = &got[t * stride..t * stride + heads * cols];
        assert!(nmse(g, &want) < 1e-12, "token {t}");
        if t + 1 < tokens {
            assert_sentinels(&got, t * stride + heads * cols..(t + 1) * stride, "gap");
        }
    }
}

/// Per-token `cos ‖ sin` rows as the model builds them (angles in f64).
fn cs_rows(cfg: &RopeConfig, positions: &[usize]) -> Vec<f32> {
    let f = cfg.inv_freqs();
    let mut v = Vec::new();
    for &p in positions {
        v.extend(f.iter().map(|&fr| (p as f64 * f64::from(fr)).cos() as f32));
        v.extend(f.iter().map(|&fr| (p as f64 * f64::from(fr)).sin() as f32));
    }
    v
}

#[test]
fn rope_matches_reference_in_both_modes() {
    let Some(ctx) = testkit::ctx() else { return };
    let (heads, hd) = (3, 8);
    let positions = [0usize, 5, 17, 1000];
    // Contiguous rows, and rows 5 floats apart whose gaps must stay untouched.
    for (mode, pad) in [
        (RopeMode::Normal, 0),
        (RopeMode::Neox, 0),
        (RopeMode::Normal, 5),
        (RopeMode::Neox, 5),
    ] {
        for n_rot in [8, 6] {
            let cfg = RopeConfig::new(n_rot, 10000.0, mode);
            let n = positions.len();
            let stride = heads * hd + pad;
            let x = random_vec(&mut rng(n_rot as u64), (n - 1) * stride + heads * hd);
            let mut want = x.clone();
            for (t, &p) in positions.iter().enumerate() {
                reference::rope(&mut want[t * stride..][..heads * hd], heads, hd, p, &cfg);
            }
            let mut host = guarded(x.len());
            host[GUARD..GUARD + x.len()].copy_from_slice(&x);
            let xb = upload_f32(ctx, &host).expect("x");
            let csb = upload_f32(ctx, &cs_rows(&cfg, &positions)).expect("cs");
            let mut enc = StepEncoder::new(ctx, "t");
            record_rope(
                &mut enc,
                mode,
                Span::whole(&csb),
                Span::new(&xb, GUARD),
                n,
                heads,
                hd,
                n_rot / 2,
                stride,
            )
            .expect("record");
            enc.submit().expect("submit");
            let got = read_guarded(ctx, &xb, x.len(), "rope");
            // Gaps compare equal to the input, so this also checks they were not written.
            assert!(
                max_abs(&got, &want) < 1e-5,
                "{mode:?} n_rot {n_rot} pad {pad}"
            );
        }
    }
}

#[test]
fn gated_activations_and_add_match_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    let n = 1000;
    let mut r = rng(7);
    let mut gate: Vec<f32> = random_vec(&mut r, n).iter().map(|v| v * 8.0).collect();
    gate[0] = 60.0;
    gate[1] = -60.0;
    let up = random_vec(&mut r, n);
    // 4 tokens of width 250, gate|up rows 503 floats apart.
    let (tokens, width, stride) = (4, 250, 503);
    let mut gu = vec![f32::NAN; (tokens - 1) * stride + 2 * width];
    for t in 0..tokens {
        gu[t * stride..][..width].copy_from_slice(&gate[t * width..][..width]);
        gu[t * stride + width..][..width].copy_from_slice(&up[t * width..][..width]);
    }
    for (act, f) in [
        (GateAct::Silu, reference::silu as fn(f32) -> f32),
        (GateAct::GeluTanh, reference::gelu_tanh),
    ] {
        let want: Vec<f32> = gate.iter().zip(&up).map(|(&g, &u)| f(g) * u).collect();
        let gb = upload_f32(ctx, &gu).expect("gu");
        let ob = out_buf(ctx, n);
        let mut enc = StepEncoder::new(ctx, "t");
        record_gate_mul(
            &mut enc,
            act,
            Span::whole(&gb),
            Span::new(&ob, GUARD),
            tokens,
            width,
            stride,
        )
        .expect("rec");
        enc.submit().expect("submit");
        let got = read_guarded(ctx, &ob, n, "gate_mul");
        assert!(got.iter().all(|v| v.is_finite()), "{act:?}");
        assert!(nmse(&got, &want) < 1e-11, "{act:?}: {}", nmse(&got, &want));
    }
    // Residual add and a broadcast bias over 4 rows of 250.
    for src_len in [n, 250] {
        let src = random_vec(&mut r, src_len);
        let want: Vec<f32> = (0..n).map(|i| gate[i] + src[i % src_len]).collect();
        let mut host = guarded(n);
        host[GUARD..GUARD + n].copy_from_slice(&gate);
        let db = upload_f32(ctx, &host).expect("dst");
        let sb = upload_f32(ctx, &src).expect("src");
        let mut enc = StepEncoder::new(ctx, "t");
        record_add(
            &mut enc,
            Span::new(&db, GUARD),
            Span::whole(&sb),
            n,
            src_len,
        )
        .expect("rec");
        enc.submit().expect("submit");
        let got = read_guarded(ctx, &db, n, "add");
        assert_eq!(got, want, "add src_len {src_len}");
    }
}

/// Writes K/V of `n_pos` positions through `table` with kv_write, then attends `q_pos`.
#[allow(clippy::too_many_arguments)]
fn paged_case(
    ctx: &GpuContext,
    dtype: CacheDtype,
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    n_pos: usize,
    q_pos: &[usize],
    window: Option<usize>,
) {
    let what = format!("{dtype:?} h{n_heads}/{n_kv} hd{hd} n{n_pos} {q_pos:?} w{window:?}");
    let row = n_kv * hd;
    let mut r = rng((hd * 7 + n_pos) as u64);
    let mut k = random_vec(&mut r, n_pos * row);
    let mut v = random_vec(&mut r, n_pos * row);
    if dtype == CacheDtype::F16 {
        for x in k.iter_mut().chain(v.iter_mut()) {
            *x = f16::from_f32(*x).to_f32();
        }
    }
    let q = random_vec(&mut r, q_pos.len() * n_heads * hd);
    let scale = 1.0 / (hd as f32).sqrt();
    let want = reference::attention(&q, &k, &v, q_pos, n_heads, n_kv, hd, scale, window);

    // Blocks handed out in reverse, so the table is not the identity.
    let n_blocks = n_pos.div_ceil(16) + 2;
    let table: Vec<u32> = (0..n_pos.div_ceil(16))
        .map(|b| (n_blocks - 1 - b) as u32)
        .collect();
    let slots: Vec<u32> = (0..n_pos)
        .map(|p| table[p / 16] * 16 + (p % 16) as u32)
        .collect();
    // meta: per query (pos, table offset), then the table.
    let t_off = 2 * q_pos.len();
    let mut meta: Vec<u32> = q_pos
        .iter()
        .flat_map(|&p| [p as u32, t_off as u32])
        .collect();
    meta.extend_from_slice(&table);
    let words = dtype.words(n_blocks * 16 * row);
    let kc = upload_f32(ctx, &vec![0.0; words]).expect("kc");
    let vc = upload_f32(ctx, &vec![0.0; words]).expect("vc");
    // K and V side by side in one buffer, rows 2 · row + 2 floats apart.
    let kv_stride = 2 * row + 2;
    let mut kvh = vec![0.0f32; n_pos * kv_stride];
    for t in 0..n_pos {
        kvh[t * kv_stride..][..row].copy_from_slice(&k[t * row..][..row]);
        kvh[t * kv_stride + row..][..row].copy_from_slice(&v[t * row..][..row]);
    }
    let kvb = upload_f32(ctx, &kvh).expect("kv");
    let sb = u32_buf(ctx, &slots);
    let mb = u32_buf(ctx, &meta);
    // Query rows 3 floats apart past their heads.
    let q_stride = n_heads * hd + 3;
    let mut qh = vec![f32::NAN; GUARD + q_pos.len() * q_stride];
    for j in 0..q_pos.len() {
        let w = n_heads * hd;
        qh[GUARD + j * q_stride..][..w].copy_from_slice(&q[j * w..][..w]);
    }
    let qb = upload_f32(ctx, &qh).expect("q");
    let ob = out_buf(ctx, q.len());
    let mut enc = StepEncoder::new(ctx, "t");
    let io = KvWriteIo {
        k: Span::new(&kvb, 0),
        v: Span::new(&kvb, row),
        src_stride: kv_stride,
        slots: Span::whole(&sb),
        k_cache: &kc,
        v_cache: &vc,
    };
    record_kv_write(&mut enc, &io, dtype, n_pos, row).expect("kv write");
    let shape = AttnShape {
        n_tokens: q_pos.len(),
        n_heads,
        n_kv_heads: n_kv,
        head_dim: hd,
        q_stride,
        scale,
        window,
        dtype,
    };
    record_attention(
        &mut enc,
        &shape,
        Span::new(&qb, GUARD),
        &kc,
        &vc,
        Span::whole(&mb),
        Span::new(&ob, GUARD),
    )
    .expect("attn");
    assert_eq!(enc.dispatch_count(), 2);
    enc.submit().expect("submit");
    let got = read_guarded(ctx, &ob, q.len(), &what);
    let e = nmse(&got, &want);
    assert!(e < 1e-11, "{what}: nmse {e:e}");
}

#[test]
fn kv_write_and_paged_attention_match_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    // Decode (one query at the end), prefill (every position), GQA, windows, big heads,
    // more keys than one 64-key tile.
    paged_case(ctx, CacheDtype::F16, 4, 2, 64, 20, &[19], None);
    paged_case(ctx, CacheDtype::F32, 4, 2, 64, 20, &[19], None);
    let all: Vec<usize> = (0..37).collect();
    paged_case(ctx, CacheDtype::F16, 3, 1, 64, 37, &all, None);
    paged_case(
        ctx,
        CacheDtype::F16,
        2,
        2,
        32,
        150,
        &[0, 64, 100, 149],
        Some(70),
    );
    paged_case(ctx, CacheDtype::F32, 2, 1, 256, 70, &[69, 3], Some(5));
    paged_case(ctx, CacheDtype::F16, 4, 1, 6, 17, &[16], None);
}

#[test]
fn argmax_prefers_first_and_skips_nan() {
    let Some(ctx) = testkit::ctx() else { return };
    let n = 1003;
    let mut x = random_vec(&mut rng(1), 2 * n);
    x[700] = 5.0;
    x[900] = 5.0;
    x[3] = f32::NAN;
    x[n + 1002] = 3.0;
    x[n] = f32::NAN;
    let xb = upload_f32(ctx, &x).expect("x");
    let ob = u32_buf(ctx, &[7, 7, 7, 7]);
    let mut enc = StepEncoder::new(ctx, "t");
    record_argmax(&mut enc, Span::whole(&xb), Span::new(&ob, 1), 2, n, n).expect("rec");
    enc.submit().expect("submit");
    let got: Vec<u32> = bytemuck::pod_collect_to_vec(&read_bytes(ctx, &ob, 0, 16).expect("read"));
    assert_eq!(got, vec![7, 700, 1002, 7]);
}

#[test]
fn bad_shapes_are_errors() {
    let Some(ctx) = testkit::ctx() else { return };
    let b = upload_f32(ctx, &[0.0; 64]).expect("b");
    let c = upload_f32(ctx, &[0.0; 64]).expect("c");
    let mut enc = StepEncoder::new(ctx, "bad");
    assert!(record_rms_norm(
        &mut enc,
        Span::whole(&b),
        Span::whole(&b),
        Span::whole(&c),
        2,
        64,
        1e-6
    )
    .is_err());
    assert!(record_add(&mut enc, Span::whole(&b), Span::whole(&c), 64, 65).is_err());
    let io = KvWriteIo {
        k: Span::whole(&b),
        v: Span::whole(&b),
        src_stride: 3,
        slots: Span::whole(&c),
        k_cache: &c,
        v_cache: &c,
    };
    // An odd row length.
    assert!(record_kv_write(&mut enc, &io, CacheDtype::F16, 1, 3).is_err());
    let shape = AttnShape {
        n_tokens: 1,
        n_heads: 3,
        n_kv_heads: 2,
        head_dim: 8,
        q_stride: 24,
        scale: 1.0,
        window: None,
        dtype: CacheDtype::F32,
    };
    assert!(record_attention(
        &mut enc,
        &shape,
        Span::whole(&b),
        &b,
        &b,
        Span::whole(&c),
        Span::whole(&c)
    )
    .is_err());
    assert_eq!(enc.dispatch_count(), 0);
}

#[test]
fn add_rms_norm_matches_add_then_norm() {
    let Some(ctx) = testkit::ctx() else { return };
    for (rows, cols) in [(3, 100), (2, 576)] {
        let mut r = rng(rows as u64 + 77);
        let h = random_vec(&mut r, rows * cols);
        let src = random_vec(&mut r, rows * cols);
        let w = random_vec(&mut r, cols);
        let sum: Vec<f32> = h.iter().zip(&src).map(|(a, b)| a + b).collect();
        let want = reference::rms_norm(&sum, &w, 1e-6);
        let hb = upload_f32(ctx, &h).expect("h");
        let sb = upload_f32(ctx, &src).expect("src");
        let wb = upload_f32(ctx, &w).expect("w");
        let ob = out_buf(ctx, rows * cols);
        let mut enc = StepEncoder::new(ctx, "t");
        record_add_rms_norm(
            &mut enc,
            Span::whole(&wb),
            &sb,
            &hb,
            Span::new(&ob, GUARD),
            rows,
            cols,
            1e-6,
        )
        .expect("record");
        enc.submit().expect("submit");
        let got = read_guarded(ctx, &ob, rows * cols, "add_rms_norm");
        assert!(nmse(&got, &want) < 1e-12, "[{rows}x{cols}]");
        let h_after = read_f32(ctx, &hb, 0, rows * cols).expect("h");
        assert_eq!(h_after, sum, "h += src");
    }
}
