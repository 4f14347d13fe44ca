//! Picks the build of the attention inner loop: portable, or compiled with AVX2 + FMA + F16C
//! enabled (plain loops then vectorize 8 wide; the dot product uses FMA intrinsics).

use super::math::Portable;
use super::online::{attend_range, Ctx, State};
use crate::kv::KvRows;
use crate::matmul::Isa;

/// An inner loop: attend a query-head group to key positions `lo..hi`.
pub(super) type Kernel<R> = fn(&Ctx<'_, R>, &[f32], usize, usize, usize) -> State;

/// The kernel for `isa`, or the portable one where this CPU lacks it.
pub(super) fn kernel_for<R: KvRows>(isa: Isa) -> Kernel<R> {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::AvxVnni) && isa.is_available() {
        return |ctx, q, g, lo, hi| {
            // SAFETY: `isa.is_available()` confirmed AVX2, FMA and F16C on this CPU.
            unsafe { attend_range_avx2(ctx, q, g, lo, hi) }
        };
    }
    let _ = isa;
    attend_range::<R, Portable>
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn attend_range_avx2<R: KvRows>(
    ctx: &Ctx<'_, R>,
    q: &[f32],
    kv_head: usize,
    lo: usize,
    hi: usize,
) -> State {
    attend_range::<R, super::math::Fma>(ctx, q, kv_head, lo, hi)
}
