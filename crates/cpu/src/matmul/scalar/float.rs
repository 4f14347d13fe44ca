//! Scalar dots of the float formats (F32, F16, BF16) against f32 activations.

use super::RowDot;
use crate::matmul::kernel::Ctx;

/// Dot of a row of `N`-byte little-endian elements decoded by `dec` with token `t`.
fn dot_with<const N: usize>(ctx: &Ctx, r: usize, t: usize, dec: impl Fn(&[u8]) -> f32) -> f32 {
    let x = &ctx.acts.f[t * ctx.cols..(t + 1) * ctx.cols];
    let mut acc = [0f32; 4];
    for (i, (w, &x)) in ctx.row(r).chunks_exact(N).zip(x).enumerate() {
        acc[i % 4] += dec(w) * x;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// F32 weights.
pub(crate) struct F32;
impl RowDot for F32 {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        dot_with::<4>(ctx, r, t, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// F16 weights.
pub(crate) struct F16;
impl RowDot for F16 {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        dot_with::<2>(ctx, r, t, crate::matmul::blocks::f16_at)
    }
}

/// BF16 weights (the upper half of an f32).
pub(crate) struct BF16;
impl RowDot for BF16 {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32 {
        dot_with::<2>(ctx, r, t, |b| {
            f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
        })
    }
}
