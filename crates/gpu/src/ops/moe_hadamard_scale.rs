//! `moe_hadamard_scale`: the scaled block-Hadamard rotation of `hadamard_scale` per MoE
//! slot, each slot scaled by the vector of the expert it routes to: the two sides of a
//! matmul with stacked trellis experts, whose every matrix has its own `suh` / `svh`; and
//! `moe_hadamard_swiglu`, gate|up's output side, the SiLU gating and down's input side in
//! one pass; and `moe_hadamard_combine`, down's output side inside the MoE combine.

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

/// Buffers and shape of one [`record_moe_hadamard_swiglu`].
#[derive(Debug, Clone, Copy)]
pub struct MoeSwigluIo<'a> {
    /// The gate|up GEMV's output on the tiles of Q, `[slots, 2 · cols]`: a slot's gate
    /// rows, then its up rows.
    pub yq: &'a wgpu::Buffer,
    /// gate|up's output scales, `[2 · mats, cols]` (expert e: gate 2e, up 2e + 1).
    pub svh: &'a wgpu::Buffer,
    /// down's input scales, `[mats, cols]`.
    pub suh: &'a wgpu::Buffer,
    /// Expert id of every slot (u32).
    pub ids: &'a wgpu::Buffer,
    /// `[slots, cols]`: down's input, rotated.
    pub out: &'a wgpu::Buffer,
    pub slots: usize,
    /// Experts in the stacks.
    pub mats: usize,
    /// The expert FFN width (gate, up and down-input rows).
    pub cols: usize,
    /// Rotation block of both sides: a power of two up to [`HADAMARD_MAX_BLOCK`] / 2.
    pub block: usize,
}

/// Record `out[j] = H(suh_e ⊙ silu(svh_2e ⊙ H(gate_j)) · (svh_2e+1 ⊙ H(up_j)))` per slot
/// `j` (expert `e = ids[j]`, `H` over blocks of `io.block`): five dispatches for a SiLU-gated
/// trellis expert MLP where the separate sides and `silu_mul` take seven.
pub fn record_moe_hadamard_swiglu(enc: &mut StepEncoder<'_>, io: &MoeSwigluIo<'_>) -> Result<()> {
    const OP: &str = "moe_hadamard_swiglu";
    let (block, cols) = (io.block, io.cols);
    check_blocks(OP, block, cols, HADAMARD_MAX_BLOCK / 2)?;
    if io.slots == 0 || io.mats == 0 {
        return Err(Error::shape(
            OP,
            format!("{} slots, {} experts", io.slots, io.mats),
        ));
    }
    Span::whole(io.yq).check(OP, "yq", io.slots * 2 * cols)?;
    Span::whole(io.svh).check(OP, "svh", io.mats * 2 * cols)?;
    Span::whole(io.suh).check(OP, "suh", io.mats * cols)?;
    Span::whole(io.ids).check(OP, "ids", io.slots)?;
    Span::whole(io.out).check(OP, "out", io.slots * cols)?;
    let blocks = io.slots * cols / block;
    let params = [
        to_u32(OP, "blocks", blocks)?,
        to_u32(OP, "block", block)?,
        (1.0 / (block as f32).sqrt()).to_bits(),
        to_u32(OP, "cols", cols)?,
        to_u32(OP, "experts", io.mats)?,
        0,
        0,
        0,
    ];
    let op = Op::MoeHadamardSwiglu;
    let groups = grid(enc, OP, blocks * wg(op) as usize, wg(op))?;
    let bufs = [io.yq, io.svh, io.suh, io.ids, io.out];
    dispatch_op(enc, op, params, &bufs, groups)
}

/// Buffers and shape of one [`record_moe_hadamard_combine`].
#[derive(Debug, Clone, Copy)]
pub struct MoeCombineIo<'a> {
    /// Down's product on Q, `[n_tokens · top_k, width]` (slot `t · top_k + j`).
    pub y: &'a wgpu::Buffer,
    /// Down's output scales, `[mats, width]`.
    pub svh: &'a wgpu::Buffer,
    /// Expert id of every slot (u32).
    pub ids: &'a wgpu::Buffer,
    /// Combine weight of every slot (f32).
    pub wts: &'a wgpu::Buffer,
    /// `[n_tokens, width]`, written or added into (`accumulate`).
    pub out: &'a wgpu::Buffer,
    pub n_tokens: usize,
    pub width: usize,
    pub top_k: usize,
    pub mats: usize,
    /// Rotation block of down's output side; `top_k · block` at most
    /// [`HADAMARD_MAX_BLOCK`].
    pub block: usize,
    pub accumulate: bool,
}

/// Record `out[t] (+)= Σ_j wts[s] · svh_{ids[s]} ⊙ H(y[s])` over token `t`'s slots
/// `s = t · top_k + j`: `moe_combine` with the stacked down experts' output side folded in
/// (one dispatch for two).
pub fn record_moe_hadamard_combine(enc: &mut StepEncoder<'_>, io: &MoeCombineIo<'_>) -> Result<()> {
    const OP: &str = "moe_hadamard_combine";
    let (n, k, w) = (io.n_tokens, io.top_k, io.width);
    check_blocks(OP, io.block, w, HADAMARD_MAX_BLOCK)?;
    if n == 0 || k == 0 || io.mats == 0 || k * io.block > HADAMARD_MAX_BLOCK {
        return Err(Error::shape(
            OP,
            format!(
                "{n} tokens, top {k} (blocks of {} side by side at most {HADAMARD_MAX_BLOCK}), {} experts",
                io.block, io.mats
            ),
        ));
    }
    Span::whole(io.y).check(OP, "y", n * k * w)?;
    Span::whole(io.svh).check(OP, "svh", io.mats * w)?;
    Span::whole(io.ids).check(OP, "ids", n * k)?;
    Span::whole(io.wts).check(OP, "wts", n * k)?;
    Span::whole(io.out).check(OP, "out", n * w)?;
    let blocks = n * w / io.block;
    let params = [
        to_u32(OP, "blocks", blocks)?,
        to_u32(OP, "block", io.block)?,
        (1.0 / (io.block as f32).sqrt()).to_bits(),
        to_u32(OP, "width", w)?,
        to_u32(OP, "top_k", k)?,
        to_u32(OP, "experts", io.mats)?,
        u32::from(io.accumulate),
        0,
    ];
    let op = Op::MoeHadamardCombine;
    let groups = grid(enc, OP, blocks * wg(op) as usize, wg(op))?;
    let bufs = [io.y, io.svh, io.ids, io.wts, io.out];
    dispatch_op(enc, op, params, &bufs, groups)
}

/// `block` a power of two in `2..=max` dividing `cols`.
fn check_blocks(op: &'static str, block: usize, cols: usize, max: usize) -> Result<()> {
    if !block.is_power_of_two() || !(2..=max).contains(&block) {
        return Err(Error::shape(
            op,
            format!("block {block} is not a power of two in 2..={max}"),
        ));
    }
    if cols == 0 || !cols.is_multiple_of(block) {
        return Err(Error::shape(
            op,
            format!("rows of {cols} are not whole blocks of {block}"),
        ));
    }
    Ok(())
}

/// Record the per-slot scaled rotation of `io` on `side`.
pub fn record_moe_hadamard_scale(
    enc: &mut StepEncoder<'_>,
    io: &MoeScaleIo<'_>,
    side: SlotSide,
) -> Result<()> {
    const OP: &str = "moe_hadamard_scale";
    let (block, cols) = (io.block, io.cols);
    check_blocks(OP, block, cols, HADAMARD_MAX_BLOCK)?;
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
