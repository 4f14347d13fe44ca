//! Stacked experts with per-matrix sides or rotations: `moe_hadamard_scale` on both sides
//! against core's rotation, and `record_moe_experts` over trellis experts (gate and up with
//! their own suh/svh, and down) and Hadamard-rotated Q8_0 experts against each slot's
//! dequantized expert times the f64 reference; `record_moe_experts_grouped` (trellis slots
//! grouped by matrix, the prefill path) the same way, and the SiLU-gated MLP with fused
//! sides (`moe_hadamard_swiglu`, `moe_hadamard_combine`). Runs on lavapipe (testkit's skip
//! rule); on an adapter with cooperative matrices the grouped case runs `moe_gemm`.

mod testkit;

use marlin_core::{hadamard, reference, QTensor, QuantFormat};
use marlin_gpu::{
    moe_experts_grouped_runs, moe_experts_swiglu_runs, moe_gemm_variant_rows, read_f32,
    record_moe_experts, record_moe_experts_grouped, record_moe_experts_swiglu,
    record_moe_hadamard_combine, record_moe_hadamard_scale, upload_f32, GpuExperts, MoeCombineIo,
    MoeExpertsIo, MoeScaleIo, Op, SlotSide, StepEncoder, Variant,
};
use testkit::{nmse, random_trellis, random_vec, random_weight, rng};

fn as_words(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&x| f32::from_bits(x)).collect()
}

#[test]
fn moe_hadamard_scale_uses_each_slots_matrix() {
    let Some(ctx) = testkit::ctx() else { return };
    // 2 tokens x top 2 = 4 slots, 2 matrices per expert of 3 experts.
    let (cols, block, parts, mats, top_k) = (96, 32, 2, 6, 2);
    let ids: Vec<u32> = vec![2, 0, 1, 2];
    let rows = ids.len() * parts;
    let mut r = rng(11);
    let x = random_vec(&mut r, rows * cols);
    let s = random_vec(&mut r, mats * cols);
    let (xb, sb) = (upload_f32(ctx, &x).unwrap(), upload_f32(ctx, &s).unwrap());
    let ib = upload_f32(ctx, &as_words(&ids)).unwrap();
    let mat = |j: usize| ids[j / parts] as usize * parts + j % parts;
    let mut want_in = Vec::new();
    let mut want_out = Vec::new();
    for j in 0..rows {
        let (m, t) = (mat(j), j / parts / top_k);
        let sm = &s[m * cols..(m + 1) * cols];
        let mut v: Vec<f32> = (0..cols).map(|c| x[t * cols + c] * sm[c]).collect();
        hadamard::rotate(&mut v, block).unwrap();
        want_in.extend(v);
        let mut v = x[j * cols..(j + 1) * cols].to_vec();
        hadamard::rotate(&mut v, block).unwrap();
        want_out.extend(v.iter().zip(sm).map(|(a, b)| a * b));
    }
    for (side, want) in [
        (SlotSide::Input { slots_per_x: top_k }, want_in),
        (SlotSide::Output, want_out),
    ] {
        let ob = upload_f32(ctx, &vec![7.0; rows * cols]).unwrap();
        let io = MoeScaleIo {
            x: &xb,
            s: &sb,
            ids: &ib,
            out: &ob,
            slots: ids.len(),
            parts,
            mats,
            cols,
            block,
        };
        let mut enc = StepEncoder::new(ctx, "moe_hadamard_scale");
        record_moe_hadamard_scale(&mut enc, &io, side).expect("record");
        enc.submit().unwrap();
        let got = read_f32(ctx, &ob, 0, rows * cols).unwrap();
        let e = nmse(&got, &want);
        assert!(e < 1e-12, "{side:?}: nmse {e:e}");
        // A block that does not divide the rows, or matrices not whole experts: refused.
        let mut enc = StepEncoder::new(ctx, "moe_hadamard_scale");
        let bad = MoeScaleIo { block: 64, ..io };
        assert!(record_moe_hadamard_scale(&mut enc, &bad, side).is_err());
        let bad = MoeScaleIo { mats: 5, ..io };
        assert!(record_moe_hadamard_scale(&mut enc, &bad, side).is_err());
    }
}

/// How [`check_experts`] records the experts.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    PerSlot,
    Grouped,
}

/// `record_moe_experts` on `mats` (`per_expert` per expert) against the reference: slot s
/// of [`IDS`] reads x row `s / x_per_slot` (rotated by `rot` first when > 0).
fn check_experts(mats: &[QTensor], per_expert: usize, x_per_slot: usize, rot: usize) -> f64 {
    check_path(mats, per_expert, x_per_slot, rot, (&IDS, Path::PerSlot))
}

const IDS: [u32; 6] = [3, 1, 1, 0, 2, 3];

fn check_path(
    mats: &[QTensor],
    per_expert: usize,
    x_per_slot: usize,
    rot: usize,
    (ids, path): (&[u32], Path),
) -> f64 {
    let ctx = testkit::ctx().expect("ctx");
    let refs: Vec<&QTensor> = mats.iter().collect();
    let e = GpuExperts::upload(ctx, &refs, per_expert).expect("upload");
    let (rows, cols) = (mats[0].rows(), mats[0].cols());
    let x = random_vec(&mut rng(5), ids.len().div_ceil(x_per_slot) * cols);
    let dense: Vec<Vec<f32>> = mats.iter().map(|t| t.to_f32().unwrap()).collect();
    let mut want = Vec::new();
    for (s, &id) in ids.iter().enumerate() {
        let mut xt = x[(s / x_per_slot) * cols..(s / x_per_slot + 1) * cols].to_vec();
        if rot > 0 {
            hadamard::rotate(&mut xt, rot).unwrap();
        }
        for p in 0..per_expert {
            let w = &dense[id as usize * per_expert + p];
            want.extend(reference::matmul(w, &xt, rows, cols, 1));
        }
    }
    assert_eq!(e.slot_rows(), per_expert * rows);
    let (xb, ib) = (
        upload_f32(ctx, &x).unwrap(),
        upload_f32(ctx, &as_words(ids)).unwrap(),
    );
    let ob = upload_f32(ctx, &vec![7.0; want.len()]).unwrap();
    let mut enc = StepEncoder::new(ctx, "moe_experts");
    let io = MoeExpertsIo {
        x: &xb,
        x_per_slot,
        ids: &ib,
        out: &ob,
        slots: ids.len(),
    };
    match path {
        Path::PerSlot => record_moe_experts(&mut enc, &e, &io).expect("record"),
        Path::Grouped => {
            assert!(moe_experts_grouped_runs(ctx, &e));
            record_moe_experts_grouped(&mut enc, &e, &io).expect("record grouped")
        }
    }
    enc.submit().unwrap();
    nmse(&read_f32(ctx, &ob, 0, want.len()).unwrap(), &want)
}

#[test]
fn trellis_experts_use_their_own_sides() {
    let Some(ctx) = testkit::ctx() else { return };
    // The f32 kernel, then the f16 tile kernel where the device runs it (the only test of
    // this binary that runs trellis experts, so the switch races with none).
    for tile in [false, true] {
        ctx.set_trellis_tile(tile);
        let f16 = ctx.matmul_variant(Op::Gemv, QuantFormat::from_name("trellis2").unwrap())
            == Variant::F16;
        if tile && !f16 {
            break;
        }
        let limit = if f16 { 1e-5 } else { 1e-9 };
        // 4 experts; gate|up = 2 matrices [32, k] each (top 2), down = 1 matrix [128, 32];
        // k = 512 gives the tile kernel 32 threads per tile row (its two-stage sums).
        for (name, k) in [
            ("trellis2", 128),
            ("trellis3_mcg", 512),
            ("trellis4_mul1", 128),
        ] {
            let f = QuantFormat::from_name(name).unwrap();
            let gu: Vec<QTensor> = (0..8).map(|i| random_trellis(f, 32, k, i)).collect();
            let e = check_experts(&gu, 2, 2, 0);
            eprintln!("{name} tile {f16} gate|up: nmse {e:e}");
            assert!(e < limit, "{name} tile {f16} gate|up: {e:e}");
            let down: Vec<QTensor> = (0..4).map(|i| random_trellis(f, 128, 32, 9 + i)).collect();
            let e = check_experts(&down, 1, 1, 0);
            eprintln!("{name} tile {f16} down: nmse {e:e}");
            assert!(e < limit, "{name} tile {f16} down: {e:e}");
        }
        // Long rows: 288 tiles per row, 256 threads per tile row (two-stage row sums).
        let f = QuantFormat::from_name("trellis3").unwrap();
        let long: Vec<QTensor> = (0..4)
            .map(|i| random_trellis(f, 32, 4608, 20 + i))
            .collect();
        let e = check_experts(&long, 1, 1, 0);
        eprintln!("trellis3 tile {f16} [32, 4608] experts: nmse {e:e}");
        assert!(e < limit, "trellis3 tile {f16} [32, 4608] experts: {e:e}");
    }
    ctx.set_trellis_tile(true);
}

/// Trellis slots grouped by matrix: 96 slots, top-2 (192 gate|up rows over 8 matrices and
/// 96 down rows over 4: 24 per matrix on average, enough for `moe_gemm`'s 64-token tiles
/// on a coop adapter), expert 2 without slots; 128-row matrices (one coop row tile).
#[test]
fn trellis_experts_grouped_by_matrix() {
    let Some(ctx) = testkit::ctx() else { return };
    let ids: Vec<u32> = (0..96).map(|s| [3, 1, 0, 1, 3, 0][s % 6]).collect();
    for name in ["trellis2", "trellis3_mcg", "trellis4_mul1"] {
        let f = QuantFormat::from_name(name).unwrap();
        let gu: Vec<QTensor> = (0..8).map(|i| random_trellis(f, 128, 256, i)).collect();
        let down: Vec<QTensor> = (0..4).map(|i| random_trellis(f, 128, 128, 9 + i)).collect();
        for (what, mats, per, x_per_slot) in [("gate|up", &gu, 2, 2), ("down", &down, 1, 1)] {
            let stack = GpuExperts::upload(ctx, &mats.iter().collect::<Vec<_>>(), per).unwrap();
            let n = ids.len() * per;
            let gemm = moe_gemm_variant_rows(ctx, &[(&stack.w, 128)], n, mats.len());
            // The tensor cores take f16 weights and activations.
            let limit = if gemm.is_some() { 1e-5 } else { 1e-9 };
            let e = check_path(mats, per, x_per_slot, 0, (&ids, Path::Grouped));
            eprintln!("{name} {what} grouped ({gemm:?}): nmse {e:e}");
            assert!(e < limit, "{name} {what} grouped ({gemm:?}): {e:e}");
        }
    }
    // 129 experts of gate and up: more matrices than moe_sort groups, so per slot.
    let f = QuantFormat::from_name("trellis2").unwrap();
    let many: Vec<QTensor> = (0..258).map(|i| random_trellis(f, 16, 32, i)).collect();
    let stack = GpuExperts::upload(ctx, &many.iter().collect::<Vec<_>>(), 2).unwrap();
    assert!(!moe_experts_grouped_runs(ctx, &stack));
}

/// A SiLU-gated trellis expert MLP with gate|up's output side, the gating and down's
/// input side in one pass (`moe_hadamard_swiglu`) and down's output side in the combine
/// (`moe_hadamard_combine`, added onto the output): `out[t] + Σ w_s W_down(silu(W_gate x_t)
/// · W_up x_t)` over token t's 2 slots against the f64 reference; stacks that do not
/// chain and top-k blocks that do not fit side by side are refused.
#[test]
fn trellis_swiglu_experts_match_the_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    let silu = |g: f32| g / (1.0 + (-g).exp());
    for name in ["trellis3", "trellis4_mul1"] {
        let f = QuantFormat::from_name(name).unwrap();
        let (k, ffn, d) = (256, 128, 64);
        // 4 experts: gate|up matrices [ffn, k] (gate 2e, up 2e + 1), down [d, ffn].
        let gu: Vec<QTensor> = (0..8).map(|i| random_trellis(f, ffn, k, 30 + i)).collect();
        let down: Vec<QTensor> = (0..4).map(|i| random_trellis(f, d, ffn, 40 + i)).collect();
        let stack = |m: &[QTensor], per| {
            GpuExperts::upload(ctx, &m.iter().collect::<Vec<_>>(), per).expect("upload")
        };
        let (egu, edown) = (stack(&gu, 2), stack(&down, 1));
        assert!(moe_experts_swiglu_runs(&egu, &edown));
        assert!(!moe_experts_swiglu_runs(&edown, &egu));
        let ids: Vec<u32> = vec![3, 1, 0, 3, 2, 2];
        let wts: Vec<f32> = vec![0.7, 0.3, 1.2, -0.4, 0.5, 0.5];
        let n = ids.len() / 2;
        let x = random_vec(&mut rng(8), n * k);
        let base = random_vec(&mut rng(9), n * d);
        let dense = |t: &QTensor| t.to_f32().unwrap();
        let mut want = base.clone();
        for (s, &e) in ids.iter().enumerate() {
            let xt = &x[(s / 2) * k..][..k];
            let g = reference::matmul(&dense(&gu[2 * e as usize]), xt, ffn, k, 1);
            let u = reference::matmul(&dense(&gu[2 * e as usize + 1]), xt, ffn, k, 1);
            let a: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| silu(g) * u).collect();
            let y = reference::matmul(&dense(&down[e as usize]), &a, d, ffn, 1);
            for (o, y) in want[(s / 2) * d..][..d].iter_mut().zip(y) {
                *o += wts[s] * y;
            }
        }
        let up = |v: &[f32]| upload_f32(ctx, v).unwrap();
        let (xb, ib, wb, ob) = (up(&x), up(&as_words(&ids)), up(&wts), up(&base));
        let yq = up(&vec![0.0; ids.len() * d]);
        let io = MoeExpertsIo {
            x: &xb,
            x_per_slot: 2,
            ids: &ib,
            out: &yq,
            slots: ids.len(),
        };
        let sides = edown.sides.as_ref().unwrap();
        let combine = MoeCombineIo {
            y: &yq,
            svh: &sides.svh,
            ids: &ib,
            wts: &wb,
            out: &ob,
            n_tokens: n,
            width: d,
            top_k: 2,
            mats: 4,
            block: sides.had_n,
            accumulate: true,
        };
        let mut enc = StepEncoder::new(ctx, "moe_swiglu");
        record_moe_experts_swiglu(&mut enc, &egu, &edown, &io).expect("record");
        record_moe_hadamard_combine(&mut enc, &combine).expect("combine");
        assert!(record_moe_experts_swiglu(&mut enc, &edown, &egu, &io).is_err());
        let wide = MoeCombineIo {
            top_k: 2048 / sides.had_n,
            n_tokens: 1,
            ..combine
        };
        assert!(record_moe_hadamard_combine(&mut enc, &wide).is_err());
        enc.submit().unwrap();
        let e = nmse(&read_f32(ctx, &ob, 0, want.len()).unwrap(), &want);
        let tile = ctx.matmul_variant(Op::Gemv, f) == Variant::F16;
        eprintln!("{name} swiglu experts + combine (tile kernel {tile}): nmse {e:e}");
        assert!(e < if tile { 1e-5 } else { 1e-9 }, "{name}: {e:e}");
    }
}

#[test]
fn rotated_experts_rotate_their_input() {
    if testkit::ctx().is_none() {
        return;
    }
    let rotated = |rows, cols, seed| {
        random_weight(QuantFormat::Q8_0, rows, cols, seed)
            .with_hadamard(64)
            .unwrap()
    };
    let gu: Vec<QTensor> = (0..8).map(|i| rotated(32, 128, i)).collect();
    let e = check_experts(&gu, 2, 2, 64);
    eprintln!("q8_0 rotated gate|up: nmse {e:e}");
    assert!(e < 1e-9, "gate|up: {e:e}");
    let down: Vec<QTensor> = (0..4).map(|i| rotated(128, 64, 9 + i)).collect();
    assert!(check_experts(&down, 1, 1, 64) < 1e-9);
    // Mixed rotations are refused.
    let ctx = testkit::ctx().unwrap();
    let plain = random_weight(QuantFormat::Q8_0, 32, 128, 1);
    assert!(GpuExperts::upload(ctx, &[&gu[0], &plain], 1).is_err());
}
