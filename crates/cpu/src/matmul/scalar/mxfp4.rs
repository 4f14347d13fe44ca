//! Scalar dot of ggml's MXFP4 blocks (E8M0 scale byte, 16 bytes of E2M1 nibbles) against Q8
//! (32-block) activations: codes map to the doubled int8 table, scaled by 2^(e−128).

use marlin_core::formats::{e8m0_to_f32_half, MXFP4_KVALUES};

use super::RowDot;
use crate::matmul::kernel::Ctx;

/// MXFP4 weights: e, qs[16] (byte j: element j low nibble, element j+16 high nibble).
pub(crate) struct Mxfp4;

impl RowDot for Mxfp4 {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        let nb = ctx.cols / 32;
        let a = &ctx.acts.qs[t * ctx.cols..(t + 1) * ctx.cols];
        let ds = &ctx.acts.ds[t * nb..(t + 1) * nb];
        let mut acc = 0f32;
        for (b, blk) in ctx.row(r).chunks_exact(17).enumerate() {
            let ab = &a[b * 32..b * 32 + 32];
            let mut isum = 0i32;
            for (j, &q) in blk[1..17].iter().enumerate() {
                let lo = i32::from(MXFP4_KVALUES[usize::from(q & 15)]);
                let hi = i32::from(MXFP4_KVALUES[usize::from(q >> 4)]);
                isum += lo * i32::from(ab[j]) + hi * i32::from(ab[j + 16]);
            }
            acc += e8m0_to_f32_half(blk[0]) * ds[b][0] * isum as f32;
        }
        acc
    }
}
