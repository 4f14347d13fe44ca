//! The MoE expert GEMV (`moe_gemv` and its fused forms): every token slot's rows of the
//! expert its router picked, from one weight holding every expert's matrix stacked.

use super::hadamard::record_hadamard;
use super::{to_u32, Span};
use crate::op::Op;
use crate::registry::{gemv_rows, trellis_tile_rows, KernelKey, Variant};
use crate::{Error, GpuContext, GpuWeight, MoeCombineOut, Result, StepEncoder};

/// Inputs and outputs of one [`record_moe_gemv`].
#[derive(Debug, Clone, Copy)]
pub struct MoeGemvIo<'a> {
    /// Activations: slot `s` reads row `s / x_per_slot` (`cols` floats each).
    pub x: &'a wgpu::Buffer,
    /// Slots sharing one x row (`top_k` for gate/up, 1 for down).
    pub x_per_slot: usize,
    /// Expert id of every slot (u32).
    pub ids: &'a wgpu::Buffer,
    /// `slots × rows_per_expert` floats, slot-major.
    pub out: &'a wgpu::Buffer,
    pub slots: usize,
    /// Rows of one expert's matrix in the stacked weight.
    pub rows_per_expert: usize,
}

/// Record `out[s] = W_{ids[s]} · x[s / x_per_slot]` for every slot, `w` holding every
/// expert's `[rows_per_expert, cols]` matrix stacked (one buffer chunk). A weight stored
/// rotated gets its x rows rotated into scratch first; trellis weights go through
/// [`record_moe_experts`](crate::record_moe_experts) (their sides are per matrix).
pub fn record_moe_gemv(enc: &mut StepEncoder<'_>, w: &GpuWeight, io: &MoeGemvIo<'_>) -> Result<()> {
    if w.trellis.is_some() {
        return Err(Error::Unsupported {
            op: "moe_gemv (one trellis weight with its sides)",
            format: w.format.name(),
        });
    }
    if w.hadamard == 0 {
        return moe_gemv(enc, w, io, 1);
    }
    let n = io.slots.div_ceil(io.x_per_slot.max(1)) * w.cols;
    let rotated = enc.scratch(n as u64 * 4);
    record_hadamard(enc, io.x, 0, &rotated, n, w.hadamard)?;
    moe_gemv(enc, w, &MoeGemvIo { x: &rotated, ..*io }, 1)
}

/// Rows of at most this many columns take [`Variant::Narrow`] (16 units of 32).
pub const MOE_NARROW_MAX_COLS: usize = 512;

/// The `moe_gemv` variant for `w`: the f16 tile kernel for trellis experts where the
/// device runs it (as the GEMV, [`GpuContext::matmul_variant`]), [`Variant::Narrow`] for
/// short rows (MLA's per-head matrices: 192 and 512 columns for GLM-4.7-Flash), unless
/// `MARLIN_GPU_MOE_NARROW=0`. Longer rows of the Dp4a formats take 8-bit activations
/// (`moe_gemv_body_q8.wgsl`) unless `MARLIN_GPU_MOE_DP4A=0`.
pub(super) fn moe_gemv_variant(ctx: &GpuContext, op: Op, w: &GpuWeight) -> Variant {
    let dp4a = super::moe_grouped::moe_dp4a_choice().is_some();
    let key = KernelKey {
        op,
        format: w.format,
        variant: Variant::Dp4a,
    };
    if dp4a && w.cols > MOE_NARROW_MAX_COLS && ctx.runs(key) {
        let wide = KernelKey {
            variant: Variant::Dp4aWide,
            ..key
        };
        return match moe_wide() && ctx.runs(wide) {
            true => Variant::Dp4aWide,
            false => Variant::Dp4a,
        };
    }
    if w.format.is_trellis() {
        return match ctx.matmul_variant(Op::Gemv, w.format) {
            Variant::F16 => Variant::F16,
            _ => Variant::Plain,
        };
    }
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var("MARLIN_GPU_MOE_NARROW").map_or(true, |v| v != "0"));
    if on && w.cols <= MOE_NARROW_MAX_COLS {
        Variant::Narrow
    } else {
        Variant::Plain
    }
}

/// Whether the Dp4a MoE GEMVs take 64 rows per workgroup (`Variant::Dp4aWide`, the dense
/// GEMV's wide form: four times the rows per x fill, four times the loads per thread in
/// flight) instead of 16 (`MARLIN_GPU_MOE_WIDE=0`); read once per process.
fn moe_wide() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("MARLIN_GPU_MOE_WIDE").map_or(true, |v| v != "0"))
}

/// What a [`record_moe_gemv_fused`] folds into its input.
#[derive(Debug, Clone, Copy)]
pub enum MoeFuse<'a> {
    /// `moe_gemv_norm`: x is the residual stream; the kernel multiplies `rms_norm(x) · w`
    /// (the buffer as [`GemvFuse::Norm`](crate::GemvFuse::Norm) reads it).
    Norm(&'a wgpu::Buffer),
    /// `moe_gemv_silu`: x rows are gate|up rows (`2 · cols` floats); the kernel multiplies
    /// `silu(gate) · up`, the `silu_mul` output.
    Silu,
    /// `moe_gemv_silu_combine`: [`MoeFuse::Silu`], and each token's slots summed into
    /// [`MoeCombineOut::out`] as [`record_moe_combine`](crate::record_moe_combine) would (one matrix per expert).
    SiluCombine(MoeCombineOut<'a>),
    /// `moe_gemv_hadamard` (trellis experts only, through [`moe_gemv_hadamard`]): the input
    /// sides' scales, `[matrices, cols]` f32.
    Hadamard(&'a wgpu::Buffer),
}

/// [`record_moe_gemv`] with its input op folded in (plain weights only: not rotated, not
/// trellis).
pub fn record_moe_gemv_fused(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MoeGemvIo<'_>,
    fuse: MoeFuse<'_>,
) -> Result<()> {
    if w.trellis.is_some() || w.hadamard > 0 || matches!(fuse, MoeFuse::Hadamard(_)) {
        return Err(Error::Unsupported {
            op: "moe_gemv with a folded input op (rotated or trellis weight)",
            format: w.format.name(),
        });
    }
    moe_gemv_with(enc, w, io, 1, Some(fuse))
}

/// `moe_gemv_hadamard`: [`moe_gemv`] of trellis experts applying each matrix slot's input
/// side `H_128(suh_m ⊙ x)` in the kernel (`suh`: `[matrices, cols]` f32; see
/// [`gemv_hadamard_runs`](super::matmul::gemv_hadamard_runs) for where it runs).
pub(crate) fn moe_gemv_hadamard(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MoeGemvIo<'_>,
    parts: usize,
    suh: &wgpu::Buffer,
) -> Result<()> {
    moe_gemv_with(enc, w, io, parts, Some(MoeFuse::Hadamard(suh)))
}

/// The `moe_gemv` dispatch: slot `s` multiplies stacked matrix
/// `ids[s / parts] · parts + s % parts` (`parts` matrices per expert, `io.slots` counting
/// every matrix slot) with x row `s / x_per_slot`.
pub(crate) fn moe_gemv(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MoeGemvIo<'_>,
    parts: usize,
) -> Result<()> {
    moe_gemv_with(enc, w, io, parts, None)
}

fn moe_gemv_with(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MoeGemvIo<'_>,
    parts: usize,
    fuse: Option<MoeFuse<'_>>,
) -> Result<()> {
    let (op, x_width) = match fuse {
        None => (Op::MoeGemv, w.cols),
        Some(MoeFuse::Norm(_)) => (Op::MoeGemvNorm, w.cols),
        Some(MoeFuse::Silu) => (Op::MoeGemvSilu, 2 * w.cols),
        Some(MoeFuse::SiluCombine(_)) => (Op::MoeGemvSiluCombine, 2 * w.cols),
        Some(MoeFuse::Hadamard(_)) => (Op::MoeGemvHadamard, w.cols),
    };
    let op_name = op.name();
    let er = io.rows_per_expert;
    if w.chunks.len() != 1 {
        return Err(Error::Unsupported {
            op: op_name,
            format: "stacked experts over several buffers",
        });
    }
    let shape_ok = io.slots > 0 && er > 0 && w.rows.is_multiple_of(er) && io.x_per_slot > 0;
    if !shape_ok || parts == 0 || !io.slots.is_multiple_of(parts) {
        return Err(Error::shape(
            op_name,
            format!(
                "{} slots of {parts} matrices, {er} rows per matrix of {} stacked rows, {} \
                 slots per x row",
                io.slots, w.rows, io.x_per_slot
            ),
        ));
    }
    Span::whole(io.x).check(op_name, "x", io.slots.div_ceil(io.x_per_slot) * x_width)?;
    Span::whole(io.ids).check(op_name, "ids", io.slots / parts)?;
    Span::whole(io.out).check(op_name, "out", io.slots * er)?;
    match fuse {
        Some(MoeFuse::Norm(n)) => Span::whole(n).check(op_name, "norm", w.cols + 4)?,
        Some(MoeFuse::Hadamard(suh)) => {
            Span::whole(suh).check(op_name, "suh", w.rows / er * w.cols)?
        }
        _ => 0,
    };
    let mut out_offset = to_u32(op_name, "parts", parts)?;
    if let Some(MoeFuse::SiluCombine(c)) = fuse {
        let k = c.top_k;
        if parts != 1 || k == 0 || k >= 1 << 16 || !io.slots.is_multiple_of(k) {
            return Err(Error::shape(
                op_name,
                format!("{} slots of {parts} matrices, {k} per token", io.slots),
            ));
        }
        Span::whole(c.wts).check(op_name, "weights", io.slots)?;
        Span::whole(c.out).check(op_name, "combined out", io.slots / k * er)?;
        out_offset = k as u32 | u32::from(c.accumulate) << 16;
    }
    let chunk = &w.chunks[0];
    let params = [
        to_u32(op_name, "rows", w.rows)?,
        to_u32(op_name, "cols", w.cols)?,
        to_u32(op_name, "rows per expert", er)?,
        to_u32(op_name, "x per slot", io.x_per_slot)?,
        to_u32(op_name, "out stride", er)?,
        chunk.meta_offset_words,
        0,
        out_offset,
    ];
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let variant = moe_gemv_variant(enc.ctx(), op, w);
    let block_rows = match variant {
        Variant::F16 => trellis_tile_rows(w.cols),
        _ => gemv_rows(w.format, variant),
    };
    let groups = [
        to_u32(op_name, "row blocks", er.div_ceil(block_rows as usize))?,
        to_u32(op_name, "slots", io.slots)?,
        1,
    ];
    if groups[0] > max || groups[1] > max {
        return Err(Error::TooLarge {
            what: format!("{op_name} grid {groups:?}"),
            bytes: u64::from(groups[0].max(groups[1])),
            limit: u64::from(max),
        });
    }
    let key = KernelKey {
        op,
        format: w.format,
        variant,
    };
    let params = bytemuck::bytes_of(&params);
    match fuse {
        Some(MoeFuse::Norm(n)) => enc.dispatch(
            key,
            params,
            &[&chunk.buffer, io.x, io.out, n, io.ids],
            groups,
        ),
        Some(MoeFuse::SiluCombine(c)) => {
            let tokens = io.slots / c.top_k;
            let arrivals = enc.ctx().arrival_counters(tokens * groups[0] as usize)?;
            enc.dispatch(
                key,
                params,
                &[&chunk.buffer, io.x, io.out, io.ids, c.wts, c.out, &arrivals],
                groups,
            )
        }
        Some(MoeFuse::Hadamard(suh)) => enc.dispatch(
            key,
            params,
            &[&chunk.buffer, io.x, io.out, io.ids, suh],
            groups,
        ),
        _ => enc.dispatch(key, params, &[&chunk.buffer, io.x, io.out, io.ids], groups),
    }
}
