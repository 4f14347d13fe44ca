//! `hadamard`: block-Hadamard rotation of activations, for weights stored rotated
//! (`QTensor::hadamard`); `record_matmul` runs it into a scratch buffer before such a matmul.
//! `hadamard_scale`: the same rotation with a per-column scale before (input side) or after
//! it (output side), the two ends of a trellis matmul.

use crate::ops::{dispatch_op, grid, to_u32, wg, Span};
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

/// Which side of a rotated matmul [`record_hadamard_scale`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleSide {
    /// `out[t] = H(s ⊙ x[t])`, written densely from 0.
    Input,
    /// `out[t] = s ⊙ H(x[t])`, written at `out.offset + t * out_stride`.
    Output { out_stride: usize },
}

/// Record the block-Hadamard rotation of `n_tokens` rows of `cols` floats with the
/// per-column scale `s` (`cols` floats) on `side`. `block` is a power of two up to
/// [`HADAMARD_MAX_BLOCK`] dividing `cols`.
#[allow(clippy::too_many_arguments)]
pub fn record_hadamard_scale(
    enc: &mut StepEncoder<'_>,
    x: Span<'_>,
    s: &wgpu::Buffer,
    out: Span<'_>,
    n_tokens: usize,
    cols: usize,
    block: usize,
    side: ScaleSide,
) -> Result<()> {
    let op = "hadamard_scale";
    if !block.is_power_of_two() || !(2..=HADAMARD_MAX_BLOCK).contains(&block) {
        return Err(Error::shape(
            op,
            format!("block {block} is not a power of two in 2..=1024"),
        ));
    }
    if cols == 0 || !cols.is_multiple_of(block) || n_tokens == 0 {
        return Err(Error::shape(
            op,
            format!("{n_tokens} rows of {cols} are not whole blocks of {block}"),
        ));
    }
    let n = n_tokens * cols;
    let x_off = x.check(op, "x", n)?;
    if s.size() < cols as u64 * 4 {
        return Err(Error::shape(
            op,
            format!("scale holds {} bytes, needs {}", s.size(), cols * 4),
        ));
    }
    let (mode, stride) = match side {
        ScaleSide::Input => {
            out.check(op, "out", n)?;
            if out.offset != 0 {
                return Err(Error::shape(op, "input side writes from offset 0"));
            }
            (0, cols)
        }
        ScaleSide::Output { out_stride } => {
            if out_stride < cols {
                return Err(Error::shape(
                    op,
                    format!("out stride {out_stride} < {cols} columns"),
                ));
            }
            out.check(op, "out", (n_tokens - 1) * out_stride + cols)?;
            (1, out_stride)
        }
    };
    let blocks = n / block;
    let params = [
        to_u32(op, "blocks", blocks)?,
        to_u32(op, "block", block)?,
        x_off,
        (1.0 / (block as f32).sqrt()).to_bits(),
        to_u32(op, "cols", cols)?,
        mode,
        to_u32(op, "out offset", out.offset)?,
        to_u32(op, "out stride", stride)?,
    ];
    let groups = grid(
        enc,
        op,
        blocks * wg(Op::HadamardScale) as usize,
        wg(Op::HadamardScale),
    )?;
    dispatch_op(
        enc,
        Op::HadamardScale,
        params,
        &[x.buffer, s, out.buffer],
        groups,
    )
}
