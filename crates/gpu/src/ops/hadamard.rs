//! `hadamard`: block-Hadamard rotation of activations, for weights stored rotated
//! (`QTensor::hadamard`); `record_matmul` runs it into a scratch buffer before such a matmul.

use crate::ops::{dispatch_op, grid, to_u32, wg};
use crate::{Error, Op, Result, StepEncoder};

/// Largest rotation block the kernel holds in workgroup memory (`MAX_BLOCK`).
pub const HADAMARD_MAX_BLOCK: usize = 1024;

/// Record `out[i] = (H_block x)[i]` for `n` floats of `x` from float `x_offset` (`n` a
/// multiple of `block`, a power of two up to [`HADAMARD_MAX_BLOCK`]).
pub fn record_hadamard(
    enc: &mut StepEncoder<'_>,
    x: &wgpu::Buffer,
    x_offset: usize,
    out: &wgpu::Buffer,
    n: usize,
    block: usize,
) -> Result<()> {
    let op = "hadamard";
    if !block.is_power_of_two() || !(2..=HADAMARD_MAX_BLOCK).contains(&block) {
        return Err(Error::shape(
            op,
            format!("block {block} is not a power of two in 2..=1024"),
        ));
    }
    if !n.is_multiple_of(block) {
        return Err(Error::shape(
            op,
            format!("{n} values are not whole blocks of {block}"),
        ));
    }
    for (name, buf, need) in [("x", x, x_offset + n), ("out", out, n)] {
        if buf.size() < need as u64 * 4 {
            return Err(Error::shape(
                op,
                format!("{name} holds {} bytes, needs {}", buf.size(), need * 4),
            ));
        }
    }
    let blocks = n / block;
    let params = [
        to_u32(op, "blocks", blocks)?,
        to_u32(op, "block", block)?,
        to_u32(op, "x offset", x_offset)?,
        (1.0 / (block as f32).sqrt()).to_bits(),
        0,
        0,
        0,
        0,
    ];
    let groups = grid(
        enc,
        op,
        blocks * wg(Op::Hadamard) as usize,
        wg(Op::Hadamard),
    )?;
    dispatch_op(enc, Op::Hadamard, params, &[x, out], groups)
}
