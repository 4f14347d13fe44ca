//! Grouped MoE GEMM on cooperative matrices (`moe_gemm`, prefill): after `moe_sort` with
//! chunks of the token tile, each workgroup multiplies one expert's row tile with a chunk of
//! that expert's slots on the tensor cores, instead of `moe_gemv_multi`'s f32 products over
//! chunks of 8 slots.

use super::moe_grouped::MoeGroups;
use super::{to_u32, Span};
use crate::op::Op;
use crate::registry::{coop_tt, KernelKey, Variant};
use crate::{Error, GpuContext, GpuWeight, Result, StepEncoder};

/// The token tile (`moe_gemm` variant) for `slots` slots over `n_experts` experts: 32-slot
/// chunks once experts average 24 slots or more, else 16.
pub fn moe_gemm_variant(slots: usize, n_experts: usize) -> Variant {
    if slots >= 24 * n_experts.max(1) {
        Variant::CoopT32
    } else {
        Variant::CoopT16
    }
}

/// Slots per chunk of `variant` (its token tile), the chunk size to sort with.
pub fn moe_gemm_chunk(variant: Variant) -> usize {
    coop_tt(variant).map_or(16, |tt| 16 * tt as usize)
}

/// Whether `ctx` runs `moe_gemm` of `variant` on `w`: the device's GEMM runs on cooperative
/// matrices (not turned off) and `w` is one plain chunk.
pub fn moe_gemm_runs(ctx: &GpuContext, w: &GpuWeight, variant: Variant) -> bool {
    let key = KernelKey {
        op: Op::MoeGemm,
        format: w.format,
        variant,
    };
    ctx.default_variant(Op::Gemm).is_coop()
        && w.hadamard == 0
        && w.trellis.is_none()
        && w.chunks.len() == 1
        && ctx.runs(key)
}

/// Record `out[p] = W_{e(p)} · x[p]` for every grouped place of `g` (sorted with chunks of
/// `variant`'s token tile, [`moe_gemm_chunk`]) on the tensor cores; `w` stacks matrices of
/// `er` rows. x and out in grouped order, as
/// [`record_moe_grouped_rows`](crate::record_moe_grouped_rows) takes them.
pub fn record_moe_gemm(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    er: usize,
    g: &MoeGroups,
    (x, out): (&wgpu::Buffer, &wgpu::Buffer),
    variant: Variant,
) -> Result<()> {
    const OP: &str = "moe_gemm";
    let Some(tt) = coop_tt(variant) else {
        return Err(Error::shape(OP, format!("{variant:?} is not a coop tile")));
    };
    if !moe_gemm_runs(enc.ctx(), w, variant) {
        return Err(Error::Unsupported {
            op: OP,
            format: w.format.name(),
        });
    }
    if er == 0 || !w.rows.is_multiple_of(er) {
        return Err(Error::shape(
            OP,
            format!("{er} rows per expert of {} stacked rows", w.rows),
        ));
    }
    Span::whole(x).check(OP, "x", g.slots * w.cols)?;
    Span::whole(out).check(OP, "out", g.slots * er)?;
    let chunk = &w.chunks[0];
    let params = [
        to_u32(OP, "rows", w.rows)?,
        to_u32(OP, "cols", w.cols)?,
        to_u32(OP, "rows per expert", er)?,
        0,
        to_u32(OP, "out stride", er)?,
        chunk.meta_offset_words,
        0,
        0,
    ];
    let tm = 32 * tt.min(4) as usize;
    let blocks = er.div_ceil(tm);
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension as usize;
    if blocks > max || g.max_chunks > max {
        return Err(Error::shape(
            OP,
            format!("grid {blocks} x {} exceeds {max}", g.max_chunks),
        ));
    }
    let key = KernelKey {
        op: Op::MoeGemm,
        format: w.format,
        variant,
    };
    enc.dispatch(
        key,
        bytemuck::bytes_of(&params),
        &[&chunk.buffer, x, out, &g.table],
        [blocks as u32, g.max_chunks as u32, 1],
    )
}
