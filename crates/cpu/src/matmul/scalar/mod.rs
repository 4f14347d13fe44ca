//! Portable scalar kernels for every fast format: the fallback on CPUs without SIMD and the
//! second implementation the SIMD kernels are tested against.

mod float;
mod kquant;
mod mxfp4;
mod q32;

use marlin_core::QuantFormat;

use super::kernel::{kernel, ActKind, Ctx, Kernel};

/// One output value: weight row `r` · token `t`.
pub(super) trait RowDot {
    fn dot(ctx: &Ctx, r: usize, t: usize) -> f32;
}

/// Tile adapter: R rows × T tokens from a per-pair dot.
///
/// # Safety
/// See [`super::kernel::TileFn`].
unsafe fn tile<D: RowDot, const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    for r in 0..R {
        for t in 0..T {
            let v = D::dot(ctx, row + r, tok + t);
            // SAFETY: the caller owns this tile (TileFn contract).
            unsafe { ctx.store(tok + t, row + r, v) };
        }
    }
}

// Single-token names for the `kernel!` macro.
use float::{BF16 as BF16W, F16 as F16W, F32 as F32W};
use kquant::Q6K;
use mxfp4::Mxfp4 as Mxfp4W;
use q32::Q8_0 as Q80;
type Q40 = q32::Q32<0>;
type Q41 = q32::Q32<1>;
type Q50 = q32::Q32<2>;
type Q51 = q32::Q32<3>;
type Q4K = kquant::Q45K<false>;
type Q5K = kquant::Q45K<true>;

static F32: Kernel = kernel!(ActKind::F32, 1, 1, tile, F32W);
static F16: Kernel = kernel!(ActKind::F32, 1, 1, tile, F16W);
static BF16: Kernel = kernel!(ActKind::F32, 1, 1, tile, BF16W);
static Q4_0: Kernel = kernel!(ActKind::Q8B32, 1, 1, tile, Q40);
static Q4_1: Kernel = kernel!(ActKind::Q8B32, 1, 1, tile, Q41);
static Q5_0: Kernel = kernel!(ActKind::Q8B32, 1, 1, tile, Q50);
static Q5_1: Kernel = kernel!(ActKind::Q8B32, 1, 1, tile, Q51);
static Q8_0: Kernel = kernel!(ActKind::Q8B32, 1, 1, tile, Q80);
static MXFP4: Kernel = kernel!(ActKind::Q8B32, 1, 1, tile, Mxfp4W);
static Q4_K: Kernel = kernel!(ActKind::Q8B256, 1, 1, tile, Q4K);
static Q5_K: Kernel = kernel!(ActKind::Q8B256, 1, 1, tile, Q5K);
static Q6_K: Kernel = kernel!(ActKind::Q8B256, 1, 1, tile, Q6K);

/// The scalar kernel for `format`, if it has one.
pub(super) fn kernel_for(format: QuantFormat) -> Option<&'static Kernel> {
    Some(match format {
        QuantFormat::F32 => &F32,
        QuantFormat::F16 => &F16,
        QuantFormat::BF16 => &BF16,
        QuantFormat::Q4_0 => &Q4_0,
        QuantFormat::Q4_1 => &Q4_1,
        QuantFormat::Q5_0 => &Q5_0,
        QuantFormat::Q5_1 => &Q5_1,
        QuantFormat::Q8_0 => &Q8_0,
        QuantFormat::MXFP4 => &MXFP4,
        QuantFormat::Q4_K => &Q4_K,
        QuantFormat::Q5_K => &Q5_K,
        QuantFormat::Q6_K => &Q6_K,
        _ => return None,
    })
}
