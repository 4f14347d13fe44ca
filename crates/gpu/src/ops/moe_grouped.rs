//! Grouped MoE projections for long steps (prefill): `moe_sort` groups a step's token slots
//! by expert, and `moe_gemv_multi` reads each expert's rows once per chunk of up to MT of
//! its slots instead of once per slot (`moe_gemv`), or `moe_gemm` (src/ops/moe_gemm.rs)
//! multiplies chunks of a token tile on the tensor cores.

use std::sync::OnceLock;

use super::act_q8::record_act_q8;
use super::moe::MOE_MAX_EXPERTS;
use super::moe_gemm::{moe_gemm_chunk, record_moe_gemm};
use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::registry::{act_q8_perm, gemv_multi_rows, gemv_multi_tokens, KernelKey, Variant};
use crate::weight_experts::GpuExperts;
use crate::GpuWeight;
use crate::{Error, Result, StepEncoder};

/// A step's slots grouped by expert (`moe_sort`'s output, u32 words of `table`).
#[derive(Debug)]
pub struct MoeGroups {
    pub table: wgpu::Buffer,
    pub slots: usize,
    /// Chunk capacity: `slots / MT + experts` (count-0 chunks past the used ones).
    pub max_chunks: usize,
    /// Word index of the x row of each grouped place (feed to `record_gather_rows`).
    pub xrow_off: usize,
    /// Word index of each slot's grouped place (gathers grouped outputs back to slots).
    pub inv_off: usize,
    /// Most slots per chunk.
    pub chunk: usize,
    /// The `moe_gemm` tile the chunks were cut for; `None`: `moe_gemv_multi`'s chunks.
    pub gemm: Option<Variant>,
}

/// Group `slots` token slots (expert ids in `ids`, `n_experts` ≤ 256) by expert; slot `s`
/// reads x row `s / slots_per_x`. Chunks for the `moe_gemm` tile `gemm`
/// ([`moe_gemm_variant`](super::moe_gemm::moe_gemm_variant)), else for `moe_gemv_multi`.
pub fn record_moe_sort(
    enc: &mut StepEncoder<'_>,
    ids: &wgpu::Buffer,
    (slots, n_experts, slots_per_x): (usize, usize, usize),
    gemm: Option<Variant>,
) -> Result<MoeGroups> {
    sort(enc, ids, (slots, n_experts, slots_per_x, 1), gemm)
}

/// Group the `slots · parts` rows of matrices `parts` per expert (trellis gate and up, each
/// with its own sides) by matrix: row `j` is slot `j / parts`'s product with matrix
/// `ids[j / parts] · parts + j % parts` of `mats` (≤ 256) and reads x row `j`.
pub fn record_moe_sort_mats(
    enc: &mut StepEncoder<'_>,
    ids: &wgpu::Buffer,
    (slots, parts, mats): (usize, usize, usize),
    gemm: Option<Variant>,
) -> Result<MoeGroups> {
    if parts == 0 || !mats.is_multiple_of(parts) {
        return Err(Error::shape(
            "moe_sort",
            format!("{mats} matrices of {parts} per expert"),
        ));
    }
    sort(enc, ids, (slots * parts, mats, 1, parts), gemm)
}

fn sort(
    enc: &mut StepEncoder<'_>,
    ids: &wgpu::Buffer,
    (slots, n_experts, slots_per_x, parts): (usize, usize, usize, usize),
    gemm: Option<Variant>,
) -> Result<MoeGroups> {
    const OP: &str = "moe_sort";
    if slots == 0 || n_experts == 0 || n_experts > MOE_MAX_EXPERTS || slots_per_x == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "{slots} slots, {n_experts} experts (≤ {MOE_MAX_EXPERTS}), {slots_per_x} slots per x row"
            ),
        ));
    }
    Span::whole(ids).check(OP, "ids", slots / parts)?;
    let mt = gemm.map_or(gemv_multi_tokens() as usize, moe_gemm_chunk);
    let max_chunks = slots.div_ceil(mt) + n_experts;
    let xrow_off = (3 * max_chunks).next_multiple_of(4);
    let inv_off = xrow_off + slots.next_multiple_of(4);
    let table = enc.scratch((inv_off + slots) as u64 * 4);
    let params = [
        to_u32(OP, "slots", slots)?,
        n_experts as u32,
        to_u32(OP, "slots per x", slots_per_x)?,
        to_u32(OP, "chunks", max_chunks)?,
        to_u32(OP, "x rows offset", xrow_off)?,
        to_u32(OP, "places offset", inv_off)?,
        mt as u32,
        to_u32(OP, "parts", parts)?,
    ];
    dispatch_op(enc, Op::MoeSort, params, &[ids, &table], [1, 1, 1])?;
    Ok(MoeGroups {
        table,
        slots,
        max_chunks,
        xrow_off,
        inv_off,
        chunk: mt,
        gemm,
    })
}

/// Record `out[p] = W_{e(p)} · x[p]` for every grouped place `p` of `g` (x and out in
/// grouped order: `x` rows gathered through `g.xrow_off`, `out` gathered back to slots
/// through `g.inv_off`). Plain stacked experts only: trellis and rotated ones are
/// `Error::Unsupported` (they keep `record_moe_experts`).
pub fn record_moe_grouped(
    enc: &mut StepEncoder<'_>,
    e: &GpuExperts,
    g: &MoeGroups,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<()> {
    if e.sides.is_some() {
        return Err(Error::Unsupported {
            op: "moe_gemv_multi",
            format: e.w.format.name(),
        });
    }
    record_moe_grouped_rows(enc, &e.w, e.parts * e.mat_rows, g, x, out)
}

/// Whether [`record_moe_grouped_rows`] runs `w` on this device.
pub fn moe_grouped_runs(ctx: &crate::GpuContext, w: &GpuWeight) -> bool {
    let key = KernelKey {
        op: Op::MoeGemvMulti,
        format: w.format,
        variant: Variant::Plain,
    };
    w.hadamard == 0 && w.chunks.len() == 1 && ctx.runs(key)
}

/// The Dp4a geometry `MARLIN_GPU_MOE_DP4A` asks for: unset or `wide` 16 lanes per row quad
/// (64 rows per workgroup: expert rows are short, 2048 columns are 64 units), `narrow` 64
/// lanes, `0` none (f32 activations, also in the one-token expert GEMVs of
/// [`record_moe_gemv`](super::moe_gemv::record_moe_gemv)). Read once per process.
pub(crate) fn moe_dp4a_choice() -> Option<Variant> {
    static CHOICE: OnceLock<Option<Variant>> = OnceLock::new();
    *CHOICE.get_or_init(|| match std::env::var("MARLIN_GPU_MOE_DP4A").as_deref() {
        Ok("0") => None,
        Ok("narrow") => Some(Variant::Dp4a),
        _ => Some(Variant::Dp4aWide),
    })
}

/// The `moe_gemv_multi` variant for `w`: 8-bit activations (quantized once by `act_q8`)
/// where the format has a Dp4a body and the device runs it (as for `gemv_multi`), else
/// plain.
pub fn moe_grouped_variant(ctx: &crate::GpuContext, w: &GpuWeight) -> Variant {
    let Some(v) = moe_dp4a_choice() else {
        return Variant::Plain;
    };
    let key = KernelKey {
        op: Op::MoeGemvMulti,
        format: w.format,
        variant: v,
    };
    let dense = ctx.matmul_variant(Op::GemvMulti, w.format) == Variant::Dp4a;
    match dense && w.cols.is_multiple_of(32) && ctx.runs(key) {
        true => v,
        false => Variant::Plain,
    }
}

/// [`record_moe_grouped`] over any stack of matrices of `er` rows in one plain weight
/// (matrix `e` is rows `e · er ..`), e.g. MLA's per-head `W_UK` with heads as the experts.
pub fn record_moe_grouped_rows(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    er: usize,
    g: &MoeGroups,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<()> {
    if let Some(v) = g.gemm {
        return record_moe_gemm(enc, w, er, g, (x, out), v);
    }
    const OP: &str = "moe_gemv_multi";
    let variant = moe_grouped_variant(enc.ctx(), w);
    let key = KernelKey {
        op: Op::MoeGemvMulti,
        format: w.format,
        variant,
    };
    if !moe_grouped_runs(enc.ctx(), w) {
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
    // The Dp4a body reads x quantized (once here, not in each workgroup) and takes the
    // slot count in the x_offset word (multi_rows_moe.wgsl).
    let (x, xrows) = match variant {
        Variant::Plain => (x.clone(), 0),
        _ => {
            let perm = act_q8_perm(w.format);
            let q8 = record_act_q8(enc, x, 0, g.slots, w.cols, perm)?;
            (q8, to_u32(OP, "slots", g.slots)?)
        }
    };
    let blocks = er.div_ceil(gemv_multi_rows(variant) as usize);
    dispatch_grouped(enc, key, (w, er), g, (&x, out), (xrows, blocks))
}

/// Dispatch grouped kernel `key` (`moe_gemv_multi`, `moe_gemm`: both read matmul params)
/// over `blocks` row blocks of the `er`-row matrices stacked in `w` by `g`'s chunks; `xrows`
/// is the Dp4a body's slot count (0 otherwise).
pub(super) fn dispatch_grouped(
    enc: &mut StepEncoder<'_>,
    key: KernelKey,
    (w, er): (&GpuWeight, usize),
    g: &MoeGroups,
    (x, out): (&wgpu::Buffer, &wgpu::Buffer),
    (xrows, blocks): (u32, usize),
) -> Result<()> {
    let op = key.op.name();
    let chunk = &w.chunks[0];
    let params = [
        to_u32(op, "rows", w.rows)?,
        to_u32(op, "cols", w.cols)?,
        to_u32(op, "rows per expert", er)?,
        0,
        to_u32(op, "out stride", er)?,
        chunk.meta_offset_words,
        xrows,
        0,
    ];
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension as usize;
    if blocks > max || g.max_chunks > max {
        return Err(Error::shape(
            op,
            format!("grid {blocks} x {} exceeds {max}", g.max_chunks),
        ));
    }
    enc.dispatch(
        key,
        bytemuck::bytes_of(&params),
        &[&chunk.buffer, x, out, &g.table],
        [blocks as u32, g.max_chunks as u32, 1],
    )
}
