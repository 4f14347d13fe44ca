//! MoE kernels against CPU references: `moe_gemv` over stacked experts in several weight
//! formats (each slot picks its expert's rows by id), `moe_route` (softmax and sigmoid
//! scores, correction bias, group limit, renormalisation, scale), `moe_combine`, and the
//! grouped prefill path (`moe_sort` + `moe_gemv_multi`).

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::{
    moe_grouped_variant, read_f32, record_gather_rows, record_moe_combine, record_moe_gemv,
    record_moe_grouped, record_moe_route, record_moe_sort, upload_f32, zeroed_f32, GpuExperts,
    GpuWeight, MoeGemvIo, MoeRouting, Op, Span, StepEncoder,
};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

fn as_words(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&x| f32::from_bits(x)).collect()
}

#[test]
fn moe_gemv_picks_each_slots_expert() {
    let Some(ctx) = testkit::ctx() else { return };
    let (experts, n, k) = (5, 3, 2);
    let ids: Vec<u32> = vec![4, 1, 1, 0, 3, 4];
    // 8 units per row (a partial tile; the narrow GEMV) and 72 (its whole first half, then
    // checked units); 200 rows per expert: more than one workgroup of the narrow GEMV's 128
    // rows, and more rows than its reduction covers in one pass.
    let cases = [24, 200]
        .into_iter()
        .flat_map(|er| testkit::moe_cases([256, 2304]).map(move |c| (er, c)));
    for (er, (cols, format)) in cases {
        let t = random_weight(format, experts * er, cols, 3);
        let w = GpuWeight::upload(ctx, &t).expect("upload");
        let dense = t.to_f32().expect("dq");
        let x = random_vec(&mut rng(7), n * cols);
        let mut want = Vec::new();
        for (s, &e) in ids.iter().enumerate() {
            let e = e as usize;
            let rows = &dense[e * er * cols..(e + 1) * er * cols];
            let xt = &x[(s / k) * cols..(s / k + 1) * cols];
            want.extend(reference::matmul(rows, xt, er, cols, 1));
        }
        let (xb, ib) = (
            upload_f32(ctx, &x).unwrap(),
            upload_f32(ctx, &as_words(&ids)).unwrap(),
        );
        let ob = zeroed_f32(ctx, ids.len() * er).unwrap();
        let mut enc = StepEncoder::new(ctx, "moe_gemv");
        let io = MoeGemvIo {
            x: &xb,
            x_per_slot: k,
            ids: &ib,
            out: &ob,
            slots: ids.len(),
            rows_per_expert: er,
        };
        record_moe_gemv(&mut enc, &w, &io).expect("record");
        enc.submit().unwrap();
        let got = read_f32(ctx, &ob, 0, want.len()).unwrap();
        let e = nmse(&got, &want);
        eprintln!("{format}: moe_gemv nmse {e:e}");
        assert!(
            e < nmse_threshold(Op::Gemv, format, testkit::moe_gemv_variant(format, cols)),
            "{format}: {e:e}"
        );
        // Rows per expert that do not divide the stacked rows are refused.
        let bad = MoeGemvIo {
            rows_per_expert: er + 1,
            ..io
        };
        let mut enc = StepEncoder::new(ctx, "moe_gemv");
        assert!(record_moe_gemv(&mut enc, &w, &bad).is_err());
    }
}

/// The routing rules (as crates/models/src/blocks/router.rs): (expert, weight) per slot.
fn route_ref(r: &MoeRouting, logits: &[f32], bias: Option<&[f32]>) -> Vec<(u32, f32)> {
    let m = logits.iter().copied().fold(f32::MIN, f32::max);
    let z: f32 = logits.iter().map(|&x| (x - m).exp()).sum();
    let score = |x: f32| {
        if r.sigmoid {
            1.0 / (1.0 + (-x).exp())
        } else {
            (x - m).exp() / z
        }
    };
    let mut choice: Vec<f32> = logits.iter().map(|&x| score(x)).collect();
    if let Some(b) = bias {
        choice.iter_mut().zip(b).for_each(|(c, b)| *c += b);
    }
    let top = |v: &[f32], k: usize| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
        idx.truncate(k);
        idx
    };
    if r.n_group > 1 {
        let size = choice.len() / r.n_group;
        let gs: Vec<f32> = choice
            .chunks(size)
            .map(|g| top(g, 2).iter().map(|&i| g[i]).sum())
            .collect();
        let kept = top(&gs, r.topk_group);
        for (g, c) in choice.chunks_mut(size).enumerate() {
            if !kept.contains(&g) {
                c.iter_mut().for_each(|c| *c = f32::NEG_INFINITY);
            }
        }
    }
    let picked = top(&choice, r.top_k);
    let mut w: Vec<f32> = picked.iter().map(|&i| score(logits[i])).collect();
    if r.normalize {
        let s: f32 = w.iter().sum::<f32>() + if r.sigmoid { 1e-20 } else { 0.0 };
        w.iter_mut().for_each(|x| *x /= s);
    }
    picked
        .into_iter()
        .zip(w)
        .map(|(i, w)| (i as u32, w * r.scale))
        .collect()
}

/// (sigmoid, normalize, n_group, topk_group, scale, with bias, shared slot) of a routing case.
type RouteCase = (bool, bool, usize, usize, f32, bool, bool);

/// `moe_route` over `n` tokens of `e` experts' `logits` against [`route_ref`], per case.
fn check_routes(
    ctx: &marlin_gpu::GpuContext,
    (n, e, top_k): (usize, usize, usize),
    logits: &[f32],
    bias: &[f32],
    cases: &[RouteCase],
) {
    for &(sigmoid, normalize, n_group, topk_group, scale, with_bias, shared_slot) in cases {
        let r = MoeRouting {
            n_experts: e,
            top_k,
            sigmoid,
            normalize,
            n_group,
            topk_group,
            scale,
            shared_slot,
        };
        let per = r.slots_per_token();
        assert_eq!(per, top_k + usize::from(shared_slot));
        let lb = upload_f32(ctx, logits).unwrap();
        let bb = upload_f32(ctx, &[vec![9.0; 4], bias.to_vec()].concat()).unwrap();
        let (ib, wb) = (
            zeroed_f32(ctx, n * per).unwrap(),
            zeroed_f32(ctx, n * per).unwrap(),
        );
        let mut enc = StepEncoder::new(ctx, "moe_route");
        let b = with_bias.then(|| Span::new(&bb, 4));
        record_moe_route(&mut enc, &r, n, &lb, b, &ib, &wb).expect("record");
        enc.submit().unwrap();
        let ids: Vec<u32> = read_f32(ctx, &ib, 0, n * per)
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        let wts = read_f32(ctx, &wb, 0, n * per).unwrap();
        for t in 0..n {
            let want = route_ref(&r, &logits[t * e..(t + 1) * e], with_bias.then_some(bias));
            for (j, (we, ww)) in want.into_iter().enumerate() {
                assert_eq!(ids[t * per + j], we, "{r:?} token {t} slot {j}");
                assert!(
                    (wts[t * per + j] - ww).abs() < 1e-5,
                    "{r:?} token {t} slot {j}"
                );
            }
            if shared_slot {
                let s = t * per + top_k;
                assert_eq!(ids[s], e as u32, "token {t}: the shared expert");
                assert_eq!(wts[s], 1.0, "token {t}: unscaled");
            }
        }
    }
}

#[test]
fn moe_route_matches_the_router_rules() {
    let Some(ctx) = testkit::ctx() else { return };
    let (n, e) = (5, 16);
    let logits = random_vec(&mut rng(11), n * e);
    let bias: Vec<f32> = random_vec(&mut rng(12), e)
        .iter()
        .map(|b| b * 0.5)
        .collect();
    let cases = [
        (false, true, 1, 1, 1.0, false, false),
        (true, true, 4, 2, 2.5, true, true),
        (true, false, 1, 1, 1.0, true, false),
        (false, false, 2, 1, 1.0, false, true),
    ];
    check_routes(ctx, (n, e, 3), &logits, &bias, &cases);
    let bad = MoeRouting {
        n_experts: 300,
        top_k: 2,
        sigmoid: false,
        normalize: true,
        n_group: 1,
        topk_group: 1,
        scale: 1.0,
        shared_slot: false,
    };
    let lb = zeroed_f32(ctx, 300).unwrap();
    let mut enc = StepEncoder::new(ctx, "moe_route");
    assert!(record_moe_route(&mut enc, &bad, 1, &lb, None, &lb, &lb).is_err());
}

/// GLM-4.7-Flash's 64 experts (top 4) and the 256-expert limit (top 8, eight groups), with
/// logits and biases on a coarse grid so that choices tie (the lower expert wins).
#[test]
fn moe_route_ranks_ties_and_wide_expert_counts() {
    let Some(ctx) = testkit::ctx() else { return };
    let grid = |v: Vec<f32>| {
        v.iter()
            .map(|x| (x * 4.0).round() / 4.0)
            .collect::<Vec<_>>()
    };
    for (n, e, top_k) in [(3, 64, 4), (2, 256, 8)] {
        let logits = grid(random_vec(&mut rng(e as u64), n * e));
        let bias = grid(random_vec(&mut rng(e as u64 + 1), e));
        let cases = [
            (true, true, 1, 1, 2.5, true, true),
            (true, true, 1, 1, 1.0, false, false),
            (false, true, 8, 4, 1.0, false, false),
            (true, false, 8, 3, 1.0, true, false),
        ];
        check_routes(ctx, (n, e, top_k), &logits, &bias, &cases);
    }
}

#[test]
fn moe_combine_weights_and_accumulates() {
    let Some(ctx) = testkit::ctx() else { return };
    let (n, d, k) = (2, 3, 2);
    let y: Vec<f32> = (0..n * k * d).map(|i| i as f32).collect();
    let w = [0.5, 2.0, 1.0, -1.0];
    let yb = upload_f32(ctx, &y).unwrap();
    let wb = upload_f32(ctx, &w).unwrap();
    for accumulate in [false, true] {
        let ob = upload_f32(ctx, &[10.0; 6]).unwrap();
        let mut enc = StepEncoder::new(ctx, "moe_combine");
        record_moe_combine(&mut enc, &yb, &wb, &ob, n, d, k, accumulate).unwrap();
        enc.submit().unwrap();
        let got = read_f32(ctx, &ob, 0, n * d).unwrap();
        let base = if accumulate { 10.0 } else { 0.0 };
        let want: Vec<f32> = (0..n * d)
            .map(|i| {
                let (t, c) = (i / d, i % d);
                base + w[t * k] * y[(t * k) * d + c] + w[t * k + 1] * y[(t * k + 1) * d + c]
            })
            .collect();
        assert_eq!(got, want, "accumulate {accumulate}");
    }
}

/// `moe_sort` + `moe_gemv_multi` (the grouped prefill path): slots grouped by expert
/// (one expert with several chunks, one with none), x rows gathered in grouped order, the
/// outputs gathered back to slot order, against the per-slot reference; the chunk table
/// covers every slot once with its own expert.
#[test]
fn grouped_moe_matches_each_slots_expert() {
    // moe_sort's table is step scratch, back in the pool at submit: a pool of its own keeps
    // the parallel tests from taking it before it is read back.
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let ctx = &ctx;
    let (experts, er, n, k) = (6, 40, 23, 2);
    let slots = n * k;
    // Expert 5 gets no slot, expert 0 more than two chunks' worth.
    let ids: Vec<u32> = (0..slots as u32)
        .map(|s| if s % 3 == 0 { 0 } else { (s * 7 + 1) % 5 })
        .collect();
    for (cols, format) in [256, 2304]
        .into_iter()
        .flat_map(|c| [QuantFormat::F16, QuantFormat::Q4_0, QuantFormat::Q4_K].map(|f| (c, f)))
    {
        let mats: Vec<_> = (0..experts)
            .map(|e| random_weight(format, er, cols, 11 + e as u64))
            .collect();
        let refs: Vec<&marlin_core::QTensor> = mats.iter().collect();
        let stacked = GpuExperts::upload(ctx, &refs, 1).expect("upload");
        let x = random_vec(&mut rng(9), n * cols);
        let mut want = Vec::new();
        for (s, &e) in ids.iter().enumerate() {
            let dense = mats[e as usize].to_f32().expect("dq");
            want.extend(reference::matmul(
                &dense,
                &x[(s / k) * cols..][..cols],
                er,
                cols,
                1,
            ));
        }
        let (xb, ib) = (
            upload_f32(ctx, &x).unwrap(),
            upload_f32(ctx, &as_words(&ids)).unwrap(),
        );
        let xg = zeroed_f32(ctx, slots * cols).unwrap();
        let yg = zeroed_f32(ctx, slots * er).unwrap();
        let y = zeroed_f32(ctx, slots * er).unwrap();
        let mut enc = StepEncoder::new(ctx, "grouped");
        let g = record_moe_sort(&mut enc, &ib, (slots, experts, k), None).expect("sort");
        let xrows = Span::new(&g.table, g.xrow_off);
        record_gather_rows(
            &mut enc,
            Span::whole(&xb),
            n,
            cols,
            xrows,
            Span::whole(&xg),
            slots,
        )
        .expect("gather x");
        record_moe_grouped(&mut enc, &stacked, &g, &xg, &yg).expect("grouped");
        let places = Span::new(&g.table, g.inv_off);
        record_gather_rows(
            &mut enc,
            Span::whole(&yg),
            slots,
            er,
            places,
            Span::whole(&y),
            slots,
        )
        .expect("gather y");
        enc.submit().unwrap();
        let got = read_f32(ctx, &y, 0, want.len()).unwrap();
        let e = nmse(&got, &want);
        // Q4_0 and Q4_K run on 8-bit activations where the device has the Dp4a body.
        let variant = moe_grouped_variant(ctx, &stacked.w);
        eprintln!("grouped {format} {cols} ({variant:?}): nmse {e:e}");
        assert!(
            e < nmse_threshold(Op::GemvMulti, format, variant),
            "{format} {cols} {variant:?}: {e:e}"
        );
        // The chunks: each place once, every chunk's slots of its expert, at most 8.
        let words: Vec<u32> = read_f32(ctx, &g.table, 0, g.inv_off + slots)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let inv = &words[g.inv_off..];
        let mut seen = vec![false; slots];
        for c in words[..3 * g.max_chunks].chunks(3) {
            let (ex, start, count) = (c[0], c[1] as usize, c[2] as usize);
            assert!(count <= 8, "chunk of {count}");
            for (place, done) in seen.iter_mut().enumerate().skip(start).take(count) {
                let s = inv
                    .iter()
                    .position(|&p| p as usize == place)
                    .expect("placed");
                assert_eq!(ids[s], ex, "slot {s} in a chunk of expert {ex}");
                assert!(!*done, "place {place} twice");
                *done = true;
            }
        }
        assert!(seen.iter().all(|&v| v), "every slot in a chunk");
    }
}
