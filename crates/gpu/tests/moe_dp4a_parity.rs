//! The MoE expert GEMVs with 8-bit activations (`moe_gemv`, `moe_gemv_silu` and
//! `moe_gemv_norm`, variant Dp4a, the default unless `MARLIN_GPU_MOE_DP4A=0`) against each slot's expert
//! matmul on the CPU, for the Dp4a formats, rows of one and of several x tiles.

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::{
    norm_with_eps, read_f32, record_moe_gemv, record_moe_gemv_fused, upload_f32, zeroed_f32,
    GpuWeight, MoeFuse, MoeGemvIo, Op, StepEncoder, Variant,
};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

const EXPERTS: usize = 5;
const ROWS: usize = 72;
const IDS: [u32; 6] = [4, 1, 1, 0, 3, 4];

#[test]
fn dp4a_moe_gemvs_match_each_slots_expert() {
    let Some(ctx) = testkit::ctx() else { return };
    for format in [QuantFormat::Q4_0, QuantFormat::Q8_0, QuantFormat::Q4_K] {
        // One x tile (the first weights loaded before the fill), one tile with a second
        // unit per thread, several tiles.
        for cols in [1024, 2304, 4352] {
            let t = random_weight(format, EXPERTS * ROWS, cols, cols as u64 + 5);
            let w = GpuWeight::upload(ctx, &t).expect("upload");
            let dense = t.to_f32().expect("dequantize");
            let mut r = rng(cols as u64);
            // silu: x rows are gate|up (2 · cols), one per slot.
            let x = random_vec(&mut r, IDS.len() * 2 * cols);
            let gain = random_vec(&mut r, cols);
            let nb = upload_f32(ctx, &norm_with_eps(&gain, 1e-5)).unwrap();
            // 0: plain, 1: silu, 2: norm.
            for hook in 0..3 {
                let silu = hook == 1;
                let xin = |s: usize| -> Vec<f32> {
                    let row = &x[s * 2 * cols..(s + 1) * 2 * cols];
                    match hook {
                        1 => (0..cols)
                            .map(|i| row[i] / (1.0 + (-row[i]).exp()) * row[cols + i])
                            .collect(),
                        2 => reference::rms_norm(&row[..cols], &gain, 1e-5),
                        _ => row[..cols].to_vec(),
                    }
                };
                let mut want = Vec::new();
                for (s, &e) in IDS.iter().enumerate() {
                    let m = &dense[e as usize * ROWS * cols..(e as usize + 1) * ROWS * cols];
                    want.extend(reference::matmul(m, &xin(s), ROWS, cols, 1));
                }
                // moe_gemv and moe_gemv_norm read x rows of cols floats: the first halves.
                let xs: Vec<f32> = match silu {
                    true => x.clone(),
                    false => (0..IDS.len())
                        .flat_map(|s| x[s * 2 * cols..s * 2 * cols + cols].to_vec())
                        .collect(),
                };
                let ids: Vec<f32> = IDS.iter().map(|&i| f32::from_bits(i)).collect();
                let (xb, ib) = (
                    upload_f32(ctx, &xs).unwrap(),
                    upload_f32(ctx, &ids).unwrap(),
                );
                let ob = zeroed_f32(ctx, IDS.len() * ROWS).unwrap();
                let io = MoeGemvIo {
                    x: &xb,
                    x_per_slot: 1,
                    ids: &ib,
                    out: &ob,
                    slots: IDS.len(),
                    rows_per_expert: ROWS,
                };
                let mut enc = StepEncoder::new(ctx, "moe_gemv_dp4a");
                match hook {
                    1 => record_moe_gemv_fused(&mut enc, &w, &io, MoeFuse::Silu).unwrap(),
                    2 => record_moe_gemv_fused(&mut enc, &w, &io, MoeFuse::Norm(&nb)).unwrap(),
                    _ => record_moe_gemv(&mut enc, &w, &io).unwrap(),
                }
                enc.submit().unwrap();
                let got = read_f32(ctx, &ob, 0, want.len()).unwrap();
                let e = nmse(&got, &want);
                eprintln!("{format} cols {cols} hook {hook}: nmse {e:e}");
                let tol = nmse_threshold(Op::Gemv, format, Variant::Dp4a);
                assert!(
                    e < tol,
                    "{format} cols {cols} hook {hook}: {e:e} (tolerance {tol:e})"
                );
                // The Dp4a kernel ran: its 8-bit activations put the error far above the f32
                // kernel's rounding.
                assert!(
                    e > 1e-7,
                    "{format} cols {cols} hook {hook}: {e:e}, the f32 kernel?"
                );
            }
        }
    }
}
