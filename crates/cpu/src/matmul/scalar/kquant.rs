//! Scalar dots of the K-quant formats (Q4_K, Q5_K, Q6_K) against Q8 (256-block) activations.

use super::RowDot;
use crate::matmul::blocks::{f16_at, k_scales, kq};
use crate::matmul::kernel::Ctx;

/// Per-token slices of the 256-block activations: codes, scales, group sums.
fn acts<'a>(ctx: &Ctx<'a>, t: usize) -> (&'a [i8], &'a [f32], &'a [i16]) {
    let nb = ctx.cols / 256;
    (
        &ctx.acts.qs[t * ctx.cols..(t + 1) * ctx.cols],
        &ctx.acts.d[t * nb..(t + 1) * nb],
        &ctx.acts.bsums[t * nb * 16..(t + 1) * nb * 16],
    )
}

/// Q4_K (`Q5 = false`) or Q5_K (`Q5 = true`).
pub(crate) struct Q45K<const Q5: bool>;

impl<const Q5: bool> RowDot for Q45K<Q5> {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        let (a, da, bsums) = acts(ctx, t);
        let (bytes, qs_off) = if Q5 {
            (kq::Q5K_BYTES, kq::Q5K_QS)
        } else {
            (kq::Q4K_BYTES, kq::Q4K_QS)
        };
        let mut acc = 0f32;
        for (b, blk) in ctx.row(r).chunks_exact(bytes).enumerate() {
            let (sc, mn) = k_scales(&blk[kq::SCALES..kq::SCALES + 12]);
            let qs = &blk[qs_off..qs_off + 128];
            let qh = &blk[kq::Q5K_QH..kq::Q5K_QH + 32];
            let a = &a[b * 256..(b + 1) * 256];
            let mut isum = 0i32;
            for sub in 0..8 {
                let (g, half) = (sub / 2, sub % 2);
                let mut s = 0i32;
                for l in 0..32 {
                    let mut q = ((qs[32 * g + l] >> (4 * half)) & 15) as i32;
                    if Q5 {
                        q |= (((qh[l] >> sub) & 1) as i32) << 4;
                    }
                    s += q * a[32 * sub + l] as i32;
                }
                isum += sc[sub] as i32 * s;
            }
            let bs = &bsums[b * 16..(b + 1) * 16];
            let mins: i32 = (0..8)
                .map(|j| mn[j] as i32 * (bs[2 * j] as i32 + bs[2 * j + 1] as i32))
                .sum();
            acc += da[b] * (f16_at(blk) * isum as f32 - f16_at(&blk[2..]) * mins as f32);
        }
        acc
    }
}

/// Q6_K: codes are `low4 | high2 << 4` minus 32, one i8 scale per 16 elements.
pub(crate) struct Q6K;

impl RowDot for Q6K {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        let (a, da, bsums) = acts(ctx, t);
        let mut acc = 0f32;
        for (b, blk) in ctx.row(r).chunks_exact(kq::Q6K_BYTES).enumerate() {
            let ql = &blk[..128];
            let qh = &blk[kq::Q6K_QH..kq::Q6K_QH + 64];
            let sc = &blk[kq::Q6K_SC..kq::Q6K_SC + 16];
            let a = &a[b * 256..(b + 1) * 256];
            let mut part = [0i32; 16];
            for h in 0..2 {
                for k in 0..4 {
                    for l in 0..32 {
                        let low = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
                        let high = (qh[32 * h + l] >> (2 * k)) & 3;
                        let q = (low | (high << 4)) as i32;
                        part[8 * h + 2 * k + l / 16] += q * a[128 * h + 32 * k + l] as i32;
                    }
                }
            }
            let bs = &bsums[b * 16..(b + 1) * 16];
            let isum: i32 = (0..16)
                .map(|g| sc[g] as i8 as i32 * (part[g] - 32 * bs[g] as i32))
                .sum();
            acc += da[b] * f16_at(&blk[kq::Q6K_D..]) * isum as f32;
        }
        acc
    }
}
