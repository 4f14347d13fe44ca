//! Scalar dots of the 32-element block formats against Q8 (32-block) activations.

use super::RowDot;
use crate::matmul::blocks::{b32, f16_at};
use crate::matmul::kernel::Ctx;

/// Q4_0 / Q4_1 / Q5_0 / Q5_1 by format id (see [`b32`]). The `_0` formats are treated as
/// `_1` with `m = −zero·d`, so the integer dot runs on unsigned codes.
pub(crate) struct Q32<const F: u8>;

impl<const F: u8> RowDot for Q32<F> {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        let l = b32(F);
        let nb = ctx.cols / 32;
        let a = &ctx.acts.qs[t * ctx.cols..(t + 1) * ctx.cols];
        let ds = &ctx.acts.ds[t * nb..(t + 1) * nb];
        let mut acc = 0f32;
        for (b, blk) in ctx.row(r).chunks_exact(l.bytes).enumerate() {
            let dw = f16_at(blk);
            let m = if l.has_m {
                f16_at(&blk[2..])
            } else {
                -l.zero * dw
            };
            let qh = if l.has_qh {
                u32::from_le_bytes([blk[l.qh], blk[l.qh + 1], blk[l.qh + 2], blk[l.qh + 3]])
            } else {
                0
            };
            let qs = &blk[l.qs..l.qs + 16];
            let ab = &a[b * 32..b * 32 + 32];
            let mut isum = 0i32;
            for j in 0..16 {
                let lo = (qs[j] & 15) as i32 | ((((qh >> j) & 1) << 4) as i32);
                let hi = (qs[j] >> 4) as i32 | ((((qh >> (j + 16)) & 1) << 4) as i32);
                isum += lo * ab[j] as i32 + hi * ab[j + 16] as i32;
            }
            acc += dw * ds[b][0] * isum as f32 + m * ds[b][1];
        }
        acc
    }
}

/// Q8_0 weights: d, qs[32] i8.
pub(crate) struct Q8_0;

impl RowDot for Q8_0 {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        let nb = ctx.cols / 32;
        let a = &ctx.acts.qs[t * ctx.cols..(t + 1) * ctx.cols];
        let ds = &ctx.acts.ds[t * nb..(t + 1) * nb];
        let mut acc = 0f32;
        for (b, blk) in ctx.row(r).chunks_exact(34).enumerate() {
            let isum: i32 = blk[2..34]
                .iter()
                .zip(&a[b * 32..b * 32 + 32])
                .map(|(&w, &x)| w as i8 as i32 * x as i32)
                .sum();
            acc += f16_at(blk) * ds[b][0] * isum as f32;
        }
        acc
    }
}
