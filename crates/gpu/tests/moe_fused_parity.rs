//! `moe_gemv_norm` and `moe_gemv_silu` (the expert GEMV with the RMSNorm before it, or the
//! SiLU gating between gate|up and down, folded into its input) against the reference:
//! rms_norm then each slot's expert matmul, and silu(gate) · up then the matmul. Rows of a
//! partial x tile and of more than one tile; f32 and 8-bit activations (Dp4a formats).

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::{
    norm_with_eps, read_f32, record_moe_gemv_fused, upload_f32, zeroed_f32, GpuWeight, MoeFuse,
    MoeGemvIo, Op, StepEncoder,
};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

const EXPERTS: usize = 5;
const ROWS: usize = 24;
/// Expert of each slot: three tokens of two slots (norm), or six slots (silu).
const IDS: [u32; 6] = [4, 1, 1, 0, 3, 4];

fn formats() -> impl Iterator<Item = (usize, QuantFormat)> {
    testkit::moe_cases([256, 4352])
}

fn silu(g: f32) -> f32 {
    g / (1.0 + (-g).exp())
}

/// Run `moe_gemv_*` with `fuse` over `x` (`x_per_slot` slots per x row) and compare each
/// slot's output with its expert's matmul of `xin(row)`.
fn check(
    format: QuantFormat,
    cols: usize,
    x: &[f32],
    x_per_slot: usize,
    fuse: MoeFuse<'_>,
    xin: impl Fn(usize) -> Vec<f32>,
) {
    let ctx = testkit::ctx().expect("ctx");
    let t = random_weight(format, EXPERTS * ROWS, cols, cols as u64 + 3);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let dense = t.to_f32().expect("dequantize");
    let mut want = Vec::new();
    for (s, &e) in IDS.iter().enumerate() {
        let rows = &dense[e as usize * ROWS * cols..(e as usize + 1) * ROWS * cols];
        want.extend(reference::matmul(rows, &xin(s / x_per_slot), ROWS, cols, 1));
    }
    let ids: Vec<f32> = IDS.iter().map(|&i| f32::from_bits(i)).collect();
    let (xb, ib) = (upload_f32(ctx, x).unwrap(), upload_f32(ctx, &ids).unwrap());
    let ob = zeroed_f32(ctx, IDS.len() * ROWS).unwrap();
    let io = MoeGemvIo {
        x: &xb,
        x_per_slot,
        ids: &ib,
        out: &ob,
        slots: IDS.len(),
        rows_per_expert: ROWS,
    };
    let mut enc = StepEncoder::new(ctx, "moe_gemv_fused");
    record_moe_gemv_fused(&mut enc, &w, &io, fuse).expect("record");
    enc.submit().unwrap();
    let got = read_f32(ctx, &ob, 0, want.len()).unwrap();
    let e = nmse(&got, &want);
    eprintln!("{format} cols {cols}: nmse {e:e}");
    assert!(
        e < nmse_threshold(Op::Gemv, format, testkit::moe_gemv_variant(format, cols)),
        "{format} cols {cols}: {e:e}"
    );
}

#[test]
fn moe_gemv_norm_matches_norm_then_matmul() {
    let Some(ctx) = testkit::ctx() else { return };
    for (cols, format) in formats() {
        let mut r = rng(cols as u64);
        let x = random_vec(&mut r, 3 * cols);
        let gain = random_vec(&mut r, cols);
        let nb = upload_f32(ctx, &norm_with_eps(&gain, 1e-5)).unwrap();
        let row = |t: usize| reference::rms_norm(&x[t * cols..(t + 1) * cols], &gain, 1e-5);
        check(format, cols, &x, 2, MoeFuse::Norm(&nb), row);
    }
    // A norm buffer without its epsilon is refused.
    let t = random_weight(QuantFormat::F32, EXPERTS * ROWS, 256, 1);
    let w = GpuWeight::upload(ctx, &t).unwrap();
    let (xb, nb) = (
        zeroed_f32(ctx, 3 * 256).unwrap(),
        zeroed_f32(ctx, 256).unwrap(),
    );
    let ids = zeroed_f32(ctx, 6).unwrap();
    let ob = zeroed_f32(ctx, 6 * ROWS).unwrap();
    let io = MoeGemvIo {
        x: &xb,
        x_per_slot: 2,
        ids: &ids,
        out: &ob,
        slots: 6,
        rows_per_expert: ROWS,
    };
    let mut enc = StepEncoder::new(ctx, "moe_gemv_norm");
    assert!(record_moe_gemv_fused(&mut enc, &w, &io, MoeFuse::Norm(&nb)).is_err());
}

#[test]
fn moe_gemv_silu_matches_gating_then_matmul() {
    if testkit::ctx().is_none() {
        return;
    }
    for (cols, format) in formats() {
        let gu = random_vec(&mut rng(cols as u64 + 1), IDS.len() * 2 * cols);
        let row = |s: usize| {
            let (g, u) = gu[s * 2 * cols..(s + 1) * 2 * cols].split_at(cols);
            g.iter().zip(u).map(|(&g, &u)| silu(g) * u).collect()
        };
        check(format, cols, &gu, 1, MoeFuse::Silu, row);
    }
}
