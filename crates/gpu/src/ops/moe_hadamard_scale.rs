//! `moe_hadamard_scale`: the scaled block-Hadamard rotation of `hadamard_scale` per MoE
//! slot, each slot scaled by the vector of the expert it routes to: the two sides of a
//! matmul with stacked trellis experts, whose every matrix has its own `suh` / `svh`.

use crate::ops::hadamard::HADAMARD_MAX_BLOCK;
use crate::ops::{dispatch_op, grid, to_u32, wg, Span};
use crate::{Error, Op, Result, StepEncoder};

/// Buffers and shape of one [`record_moe_hadamard_scale`].
#[derive(Debug, Clone, Copy)]
pub struct MoeScaleIo<'a> {
    /// Input rows of `cols` floats (see [`SlotSide`]).
    pub x: &'a wgpu::Buffer,
    /// One scale vector of `cols` floats per stacked matrix: `[mats, cols]`.
    pub s: &'a wgpu::Buffer,
    /// Expert id of every slot (u32).
    pub ids: &'a wgpu::Buffer,
    /// `[slots · parts, cols]`, row `j` for matrix `ids[j / parts] · parts + j % parts`.
    pub out: &'a wgpu::Buffer,
    pub slots: usize,
    /// Matrices per expert (2 when gate and up are separate matrices, else 1).
    pub parts: usize,
    /// Stacked matrices (`n_experts · parts`).
    pub mats: usize,
    pub cols: usize,
    /// Rotation block: a power of two up to [`HADAMARD_MAX_BLOCK`] dividing `cols`.
    pub block: usize,
}

/// Which side of the expert matmul [`record_moe_hadamard_scale`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSide {
    /// `out[j] = H(s_m ⊙ x[j / (parts · slots_per_x)])`: slots share an x row (`top_k`
    /// slots read their token's row, 1 when every slot has its own).
    Input { slots_per_x: usize },
    /// `out[j] = s_m ⊙ H(x[j])`, `x` holding `[slots · parts, cols]`.
    Output,
}

/// Record the per-slot scaled rotation of `io` on `side`.
pub fn record_moe_hadamard_scale(
    enc: &mut StepEncoder<'_>,
    io: &MoeScaleIo<'_>,
    side: SlotSide,
) -> Result<()> {
    const OP: &str = "moe_hadamard_scale";
    let (block, cols) = (io.block, io.cols);
    if !block.is_power_of_two() || !(2..=HADAMARD_MAX_BLOCK).contains(&block) {
        return Err(Error::shape(
            OP,
            format!("block {block} is not a power of two in 2..=1024"),
        ));
    }
    if cols == 0 || !cols.is_multiple_of(block) {
        return Err(Error::shape(
            OP,
            format!("rows of {cols} are not whole blocks of {block}"),
        ));
    }
    if io.slots == 0 || io.parts == 0 || io.mats == 0 || !io.mats.is_multiple_of(io.parts) {
        return Err(Error::shape(
            OP,
            format!(
                "{} slots, {} matrices per expert, {} matrices",
                io.slots, io.parts, io.mats
            ),
        ));
    }
    let rows = io.slots * io.parts;
    let (mode, x_div, x_rows) = match side {
        SlotSide::Input { slots_per_x: 0 } => {
            return Err(Error::shape(OP, "0 slots per x row"));
        }
        SlotSide::Input { slots_per_x } => {
            (0, slots_per_x * io.parts, io.slots.div_ceil(slots_per_x))
        }
        SlotSide::Output => (1, 1, rows),
    };
    Span::whole(io.x).check(OP, "x", x_rows * cols)?;
    Span::whole(io.s).check(OP, "s", io.mats * cols)?;
    Span::whole(io.ids).check(OP, "ids", io.slots)?;
    Span::whole(io.out).check(OP, "out", rows * cols)?;
    let blocks = rows * cols / block;
    let params = [
        to_u32(OP, "blocks", blocks)?,
        to_u32(OP, "block", block)?,
        (1.0 / (block as f32).sqrt()).to_bits(),
        to_u32(OP, "cols", cols)?,
        mode,
        to_u32(OP, "parts", io.parts)?,
        to_u32(OP, "x_div", x_div)?,
        to_u32(OP, "matrices", io.mats)?,
    ];
    let op = Op::MoeHadamardScale;
    let groups = grid(enc, OP, blocks * wg(op) as usize, wg(op))?;
    dispatch_op(enc, op, params, &[io.x, io.s, io.ids, io.out], groups)
}
