//! One MoE projection over every token slot with stacked experts ([`GpuExperts`]): a plain
//! or rotated stack is one `moe_gemv`; trellis experts are `moe_hadamard_scale` (each slot's
//! `H(suh_m ⊙ x)`) → `moe_gemv` on the tiles of Q → `moe_hadamard_scale` (`svh_m ⊙ H y`),
//! three dispatches whatever `top_k` and the number of experts.

use crate::ops::moe::{moe_gemv, record_moe_gemv, MoeGemvIo};
use crate::ops::moe_hadamard_scale::{record_moe_hadamard_scale, MoeScaleIo, SlotSide};
use crate::weight_experts::GpuExperts;
use crate::{Result, StepEncoder};

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
    let gemv_io = io.gemv(e.mat_rows);
    let Some(sides) = &e.sides else {
        return record_moe_gemv(enc, &e.w, &gemv_io);
    };
    let (parts, cols, rows) = (e.parts, e.w.cols, e.mat_rows);
    let mats = e.n_experts * parts;
    let n = io.slots * parts;
    let xin = enc.scratch((n * cols) as u64 * 4);
    let input = MoeScaleIo {
        x: io.x,
        s: &sides.suh,
        ids: io.ids,
        out: &xin,
        slots: io.slots,
        parts,
        mats,
        cols,
        block: sides.had_k,
    };
    let side = SlotSide::Input {
        slots_per_x: io.x_per_slot,
    };
    record_moe_hadamard_scale(enc, &input, side)?;
    let yq = enc.scratch((n * rows) as u64 * 4);
    let q_io = MoeGemvIo {
        x: &xin,
        x_per_slot: 1,
        out: &yq,
        slots: n,
        ..gemv_io
    };
    moe_gemv(enc, &e.w, &q_io, parts)?;
    let output = MoeScaleIo {
        x: &yq,
        s: &sides.svh,
        out: io.out,
        cols: rows,
        block: sides.had_n,
        ..input
    };
    record_moe_hadamard_scale(enc, &output, SlotSide::Output)
}
