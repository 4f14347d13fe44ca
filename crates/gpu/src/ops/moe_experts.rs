//! One MoE projection over every token slot with stacked experts ([`GpuExperts`]): a plain
//! or rotated stack is one `moe_gemv`; trellis experts are `moe_hadamard_scale` (each slot's
//! `H(suh_m ⊙ x)`) → `moe_gemv` on the tiles of Q → `moe_hadamard_scale` (`svh_m ⊙ H y`),
//! three dispatches whatever `top_k` and the number of experts. Long steps of trellis
//! experts group the slots by matrix ([`record_moe_experts_grouped`]); a SiLU-gated trellis
//! MLP runs gate|up's output side, the gating and down's input side as one dispatch and
//! leaves down's output side to the combine ([`record_moe_experts_swiglu`]).

use crate::op::Op;
use crate::ops::embed::record_gather_rows;
use crate::ops::gemv_hadamard::gemv_hadamard_runs;
use crate::ops::hadamard::HADAMARD_MAX_BLOCK;
use crate::ops::moe::MOE_MAX_EXPERTS;
use crate::ops::moe_gemm::moe_gemm_variant_rows;
use crate::ops::moe_gemv::{moe_gemv, moe_gemv_hadamard, record_moe_gemv, MoeGemvIo};
use crate::ops::moe_grouped::{moe_grouped_runs, record_moe_grouped_rows, record_moe_sort_mats};
use crate::ops::moe_hadamard_scale::{
    record_moe_hadamard_scale, record_moe_hadamard_swiglu, MoeScaleIo, MoeSwigluIo, SlotSide,
};
use crate::ops::Span;
use crate::weight_experts::{ExpertSides, GpuExperts};
use crate::{Error, GpuContext, Result, StepEncoder};

/// Inputs and outputs of one [`record_moe_experts`].
#[derive(Debug, Clone, Copy)]
pub struct MoeExpertsIo<'a> {
    /// Activations: slot `s` reads row `s / x_per_slot` (`cols` floats each).
    pub x: &'a wgpu::Buffer,
    /// Slots sharing one x row (`top_k` for gate/up, 1 for down).
    pub x_per_slot: usize,
    /// Expert id of every slot (u32).
    pub ids: &'a wgpu::Buffer,
    /// `[slots, e.slot_rows()]` floats, slot-major.
    pub out: &'a wgpu::Buffer,
    pub slots: usize,
}

impl<'a> MoeExpertsIo<'a> {
    /// The same slots as one [`record_moe_gemv`] over matrices of `rows_per_expert` rows.
    pub fn gemv(&self, rows_per_expert: usize) -> MoeGemvIo<'a> {
        MoeGemvIo {
            x: self.x,
            x_per_slot: self.x_per_slot,
            ids: self.ids,
            out: self.out,
            slots: self.slots,
            rows_per_expert,
        }
    }
}

/// Record `out[s] = W_{ids[s]} · x[s / x_per_slot]` for every slot, `W_e` being expert e's
/// matrices of `e` stacked row-wise (gate rows then up rows for a gate|up projection).
pub fn record_moe_experts(
    enc: &mut StepEncoder<'_>,
    e: &GpuExperts,
    io: &MoeExpertsIo<'_>,
) -> Result<()> {
    let Some(sides) = &e.sides else {
        return record_moe_gemv(enc, &e.w, &io.gemv(e.mat_rows));
    };
    let yq = record_input_and_q(enc, e, sides, io)?;
    record_output_side(enc, e, sides, io, &yq)
}

/// Whether [`record_moe_experts_grouped`] runs `e` on this device: trellis experts whose
/// grouped kernel (`moe_gemv_multi`) the device has, with at most [`MOE_MAX_EXPERTS`]
/// matrices for `moe_sort` to group by.
pub fn moe_experts_grouped_runs(ctx: &GpuContext, e: &GpuExperts) -> bool {
    e.sides.is_some()
        && e.n_experts * e.parts <= MOE_MAX_EXPERTS
        && e.mat_rows.is_multiple_of(4)
        && moe_grouped_runs(ctx, &e.w)
}

/// [`record_moe_experts`] for long steps (prefill) of trellis experts: the rows of every
/// slot and matrix are grouped by matrix, so each matrix's tiles are decoded once per chunk
/// of its slots (`moe_gemm` on the tensor cores where the device has them and the matrices
/// average enough slots, else `moe_gemv_multi`) instead of once per slot. Dispatches:
/// `moe_hadamard_scale` (input side), `moe_sort` over the matrices, `gather_rows`, the
/// grouped kernel on Q, `gather_rows` back to slot order, `moe_hadamard_scale` (output side).
pub fn record_moe_experts_grouped(
    enc: &mut StepEncoder<'_>,
    e: &GpuExperts,
    io: &MoeExpertsIo<'_>,
) -> Result<()> {
    let sides = match &e.sides {
        Some(s) if moe_experts_grouped_runs(enc.ctx(), e) => s,
        _ => {
            return Err(Error::Unsupported {
                op: "moe_experts_grouped",
                format: e.w.format.name(),
            })
        }
    };
    let (parts, cols, rows) = (e.parts, e.w.cols, e.mat_rows);
    let (n, mats) = (io.slots * parts, e.n_experts * parts);
    let xin = record_input_side(enc, e, sides, io)?;
    let gemm = moe_gemm_variant_rows(enc.ctx(), &[(&e.w, rows)], n, mats);
    let g = record_moe_sort_mats(enc, io.ids, (io.slots, parts, mats), gemm)?;
    let xg = enc.scratch((n * cols) as u64 * 4);
    let xrows = Span::new(&g.table, g.xrow_off);
    record_gather_rows(enc, Span::whole(&xin), n, cols, xrows, Span::whole(&xg), n)?;
    let yg = enc.scratch((n * rows) as u64 * 4);
    record_moe_grouped_rows(enc, &e.w, rows, &g, &xg, &yg)?;
    let yq = enc.scratch((n * rows) as u64 * 4);
    let places = Span::new(&g.table, g.inv_off);
    record_gather_rows(enc, Span::whole(&yg), n, rows, places, Span::whole(&yq), n)?;
    record_output_side(enc, e, sides, io, &yq)
}

/// Whether [`record_moe_experts_swiglu`] takes `gate_up` and `down`: trellis stacks of
/// the same experts, two matrices per expert and one, gate|up's output rotated in blocks
/// of the size down's input is (at most half the largest rotation block).
pub fn moe_experts_swiglu_runs(gate_up: &GpuExperts, down: &GpuExperts) -> bool {
    match (&gate_up.sides, &down.sides) {
        (Some(g), Some(d)) => {
            gate_up.parts == 2
                && down.parts == 1
                && gate_up.n_experts == down.n_experts
                && gate_up.mat_rows == down.w.cols
                && g.had_n == d.had_k
                && g.had_n <= HADAMARD_MAX_BLOCK / 2
        }
        _ => false,
    }
}

/// `out[s] = Q_down(H(suh_down ⊙ silu(W_gate x) · W_up x))` per slot for SiLU-gated trellis
/// experts (`io.out`: `[slots, down rows]`): down's product on the tiles of Q, whose output
/// side the MoE combine applies ([`record_moe_hadamard_combine`](crate::record_moe_hadamard_combine)).
/// Four dispatches: gate|up's input side, its GEMV on Q, `moe_hadamard_swiglu`, down's GEMV
/// on Q, where [`record_moe_experts`] twice and `silu_mul` take seven, the combine one more.
pub fn record_moe_experts_swiglu(
    enc: &mut StepEncoder<'_>,
    gate_up: &GpuExperts,
    down: &GpuExperts,
    io: &MoeExpertsIo<'_>,
) -> Result<()> {
    let (Some(gs), Some(ds)) = (&gate_up.sides, &down.sides) else {
        return Err(Error::Unsupported {
            op: "moe_hadamard_swiglu",
            format: gate_up.w.format.name(),
        });
    };
    if !moe_experts_swiglu_runs(gate_up, down) {
        return Err(Error::shape(
            "moe_hadamard_swiglu",
            "gate|up and down stacks that do not chain (parts, experts, widths or blocks)",
        ));
    }
    let (f, slots) = (gate_up.mat_rows, io.slots);
    let yq = record_input_and_q(enc, gate_up, gs, io)?;
    let act = enc.scratch((slots * f) as u64 * 4);
    let swiglu = MoeSwigluIo {
        yq: &yq,
        svh: &gs.svh,
        suh: &ds.suh,
        ids: io.ids,
        out: &act,
        slots,
        mats: gate_up.n_experts,
        cols: f,
        block: gs.had_n,
    };
    record_moe_hadamard_swiglu(enc, &swiglu)?;
    let down_io = MoeGemvIo {
        x: &act,
        x_per_slot: 1,
        ids: io.ids,
        out: io.out,
        slots,
        rows_per_expert: down.mat_rows,
    };
    moe_gemv(enc, &down.w, &down_io, 1)
}

/// The products of Q with every slot's x after the input side, per slot and matrix, into
/// scratch (`[slots · parts, mat_rows]`): one `moe_gemv_hadamard` where the device runs it
/// ([`gemv_hadamard_runs`]), else the input side into scratch, then `moe_gemv`.
fn record_input_and_q(
    enc: &mut StepEncoder<'_>,
    e: &GpuExperts,
    sides: &ExpertSides,
    io: &MoeExpertsIo<'_>,
) -> Result<wgpu::Buffer> {
    let n = io.slots * e.parts;
    let yq = enc.scratch((n * e.mat_rows) as u64 * 4);
    let q_io = MoeGemvIo {
        out: &yq,
        slots: n,
        ..io.gemv(e.mat_rows)
    };
    if gemv_hadamard_runs(enc.ctx(), Op::MoeGemvHadamard, &e.w, sides.had_k) {
        // Matrix slot j reads x row j / (parts · x_per_slot).
        let q_io = MoeGemvIo {
            x_per_slot: io.x_per_slot * e.parts,
            ..q_io
        };
        moe_gemv_hadamard(enc, &e.w, &q_io, e.parts, &sides.suh)?;
    } else {
        let xin = record_input_side(enc, e, sides, io)?;
        let q_io = MoeGemvIo {
            x: &xin,
            x_per_slot: 1,
            ..q_io
        };
        moe_gemv(enc, &e.w, &q_io, e.parts)?;
    }
    Ok(yq)
}

/// The input side of trellis experts: `H(suh_m ⊙ x)` per slot and matrix, into scratch
/// (`[slots · parts, cols]`).
fn record_input_side(
    enc: &mut StepEncoder<'_>,
    e: &GpuExperts,
    sides: &ExpertSides,
    io: &MoeExpertsIo<'_>,
) -> Result<wgpu::Buffer> {
    let xin = enc.scratch((io.slots * e.parts * e.w.cols) as u64 * 4);
    let input = scale_io(e, &sides.suh, io, (io.x, &xin), e.w.cols, sides.had_k);
    let side = SlotSide::Input {
        slots_per_x: io.x_per_slot,
    };
    record_moe_hadamard_scale(enc, &input, side)?;
    Ok(xin)
}

/// The output side of trellis experts: `svh_m ⊙ H(yq)` per slot and matrix into `io.out`.
fn record_output_side(
    enc: &mut StepEncoder<'_>,
    e: &GpuExperts,
    sides: &ExpertSides,
    io: &MoeExpertsIo<'_>,
    yq: &wgpu::Buffer,
) -> Result<()> {
    let output = scale_io(e, &sides.svh, io, (yq, io.out), e.mat_rows, sides.had_n);
    record_moe_hadamard_scale(enc, &output, SlotSide::Output)
}

fn scale_io<'a>(
    e: &GpuExperts,
    s: &'a wgpu::Buffer,
    io: &MoeExpertsIo<'a>,
    (x, out): (&'a wgpu::Buffer, &'a wgpu::Buffer),
    cols: usize,
    block: usize,
) -> MoeScaleIo<'a> {
    MoeScaleIo {
        x,
        s,
        ids: io.ids,
        out,
        slots: io.slots,
        parts: e.parts,
        mats: e.n_experts * e.parts,
        cols,
        block,
    }
}
