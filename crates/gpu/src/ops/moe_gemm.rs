//! The grouped MoE GEMM on cooperative matrices (`moe_gemm`, prefill): after `moe_sort`
//! with chunks of the token tile, each workgroup multiplies one expert's row tile with a
//! chunk of that expert's slots on the tensor cores, where `moe_gemv_multi` takes chunks of
//! 8 slots through 8-bit dot products.

use std::sync::OnceLock;

use super::moe_grouped::{dispatch_grouped, moe_grouped_variant, MoeGroups};
use super::Span;
use crate::op::Op;
use crate::registry::{coop_tt, KernelKey, Variant};
use crate::{Error, GpuContext, GpuExperts, GpuWeight, Result, StepEncoder};

/// Fewest slots per expert, on average, for which the grouped GEMM runs: below it the
/// 64-token tiles would be mostly empty.
pub const MOE_GEMM_MIN_AVG_SLOTS: usize = 16;
/// Average slots per expert from which the 128 x 128 tile runs (half the weight staging
/// per product of the 64-token one).
const MOE_GEMM_T128_AVG_SLOTS: usize = 128;

/// `MARLIN_GPU_MOE_GEMM=0` keeps every grouped step on `moe_gemv_multi`; read once.
fn moe_gemm_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("MARLIN_GPU_MOE_GEMM").map_or(true, |v| v != "0"))
}

/// The token tile for `slots` slots over `n` matrices: 64 tokens from
/// [`MOE_GEMM_MIN_AVG_SLOTS`] slots per matrix on average, 128 from 128; `None` below.
fn tile_for(slots: usize, n: usize) -> Option<Variant> {
    match slots / n.max(1) {
        avg if avg >= MOE_GEMM_T128_AVG_SLOTS => Some(Variant::CoopT128),
        avg if avg >= MOE_GEMM_MIN_AVG_SLOTS => Some(Variant::Coop),
        _ => None,
    }
}

/// Rows of a workgroup's tile for coop `variant` (expert row counts must be a multiple).
fn tile_rows(variant: Variant) -> usize {
    coop_tt(variant).map_or(0, |tt| 32 * tt.min(4) as usize)
}

/// Slots per chunk for `variant` (its token tile): the chunk size to sort with.
pub fn moe_gemm_chunk(variant: Variant) -> usize {
    coop_tt(variant).map_or(1, |tt| 16 * tt as usize)
}

/// Whether `ctx` runs `moe_gemm` of `variant` on stacked matrices of `er` rows in `w`:
/// the device's GEMM runs on cooperative matrices, `w` is one chunk with no transform of
/// its own (not rotated, no dense trellis sides: a trellis expert stack's tiles of Q
/// qualify, its per-matrix sides run around the GEMM) and its matrices start on row tiles.
pub fn moe_gemm_runs(ctx: &GpuContext, w: &GpuWeight, er: usize, variant: Variant) -> bool {
    let key = KernelKey {
        op: Op::MoeGemm,
        format: w.format,
        variant,
    };
    let tm = tile_rows(variant);
    ctx.default_variant(Op::Gemm).is_coop()
        && tm > 0
        && er > 0
        && er.is_multiple_of(tm)
        && w.rows.is_multiple_of(er)
        && w.hadamard == 0
        && w.trellis.is_none()
        && w.chunks.len() == 1
        && ctx.runs(key)
}

/// The `moe_gemm` tile for a step of `slots` slots over every expert stack in `experts`
/// (one grouping serves them all), or `None` to stay on `moe_gemv_multi`: too few slots
/// per expert, a stack the GEMM cannot take, or `MARLIN_GPU_MOE_GEMM=0`.
pub fn moe_gemm_variant(
    ctx: &GpuContext,
    experts: &[&GpuExperts],
    slots: usize,
) -> Option<Variant> {
    let n = experts.first()?.n_experts;
    let plain = experts.iter().all(|e| e.sides.is_none());
    let stacks: Vec<(&GpuWeight, usize)> = experts
        .iter()
        .map(|e| (&e.w, e.parts * e.mat_rows))
        .collect();
    moe_gemm_variant_rows(ctx, &stacks, slots, n).filter(|_| plain)
}

/// [`moe_gemm_variant`] for stacks of `n` matrices given as (weight, rows per matrix),
/// e.g. MLA's per-head matrices with heads as the experts.
pub fn moe_gemm_variant_rows(
    ctx: &GpuContext,
    stacks: &[(&GpuWeight, usize)],
    slots: usize,
    n: usize,
) -> Option<Variant> {
    let variant = tile_for(slots, n)?;
    if !moe_gemm_on() || stacks.is_empty() {
        return None;
    }
    stacks
        .iter()
        .all(|&(w, er)| gemm_pays(ctx, w) && moe_gemm_runs(ctx, w, er, variant))
        .then_some(variant)
}

/// Whether the tensor-core GEMM beats `moe_gemv_multi` on `w`'s format. GLM-4.7-Flash
/// prefill of 512 tokens on an H100 (run "EN" / "EO", tok/s, grouped GEMV → GEMM): q4_0
/// 5,043 → 5,441, q4_k 4,316 → 5,272, but fp4 4,756 → 4,199 and int4 4,598 → 4,306: the
/// group-scaled metal-marlin formats decode slower into the f16 tile than their 8-bit dot
/// products run, so where they have a Dp4a grouped GEMV they keep it.
fn gemm_pays(ctx: &GpuContext, w: &GpuWeight) -> bool {
    !(w.format.is_marlin() && moe_grouped_variant(ctx, w) != Variant::Plain)
}

/// Record `out[p] = W_{e(p)} · x[p]` for every grouped place of `g` on the tensor cores
/// (`g` sorted with chunks of `variant`'s token tile); `w` stacks matrices of `er` rows.
/// x and out in grouped order, as [`record_moe_grouped_rows`](super::moe_grouped::record_moe_grouped_rows) takes them.
pub fn record_moe_gemm(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    er: usize,
    g: &MoeGroups,
    (x, out): (&wgpu::Buffer, &wgpu::Buffer),
    variant: Variant,
) -> Result<()> {
    const OP: &str = "moe_gemm";
    if !moe_gemm_runs(enc.ctx(), w, er, variant) {
        return Err(Error::Unsupported {
            op: OP,
            format: w.format.name(),
        });
    }
    if g.chunk != moe_gemm_chunk(variant) {
        return Err(Error::shape(
            OP,
            format!(
                "groups of {}-slot chunks for a {}-token tile",
                g.chunk,
                moe_gemm_chunk(variant)
            ),
        ));
    }
    Span::whole(x).check(OP, "x", g.slots * w.cols)?;
    Span::whole(out).check(OP, "out", g.slots * er)?;
    let key = KernelKey {
        op: Op::MoeGemm,
        format: w.format,
        variant,
    };
    let blocks = er / tile_rows(variant);
    dispatch_grouped(enc, key, (w, er), g, (x, out), (0, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_follow_the_slots_per_expert() {
        // GLM-4.7-Flash: 64 experts, top-4, so 4 slots per token.
        assert_eq!(tile_for(4 * 255, 64), None);
        assert_eq!(tile_for(4 * 256, 64), Some(Variant::Coop));
        assert_eq!(tile_for(4 * 512, 64), Some(Variant::Coop));
        assert_eq!(tile_for(4 * 2048, 64), Some(Variant::CoopT128));
        assert_eq!(tile_for(0, 0), None);
        // Chunks are the token tile; rows start on the 128-row tile of both.
        assert_eq!(moe_gemm_chunk(Variant::Coop), 64);
        assert_eq!(moe_gemm_chunk(Variant::CoopT128), 128);
        assert_eq!(tile_rows(Variant::Coop), 128);
        assert_eq!(tile_rows(Variant::CoopT128), 128);
        assert_eq!(tile_rows(Variant::Dp4a), 0);
    }
}
