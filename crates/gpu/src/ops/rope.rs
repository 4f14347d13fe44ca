//! RoPE launcher: rotates `n_tokens × n_heads` heads in place with per-token cos/sin rows.

use marlin_core::rope::RopeMode;

use super::{dispatch_op, grid, wg, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Record RoPE of `x` (`n_tokens` rows of `n_heads × head_dim` floats, rows `stride` floats
/// apart) in `mode`, rotating the first `2 · half` dims of each head. `cs` holds per token
/// `half` cosines then `half` sines.
#[allow(clippy::too_many_arguments)]
pub fn record_rope(
    enc: &mut StepEncoder<'_>,
    mode: RopeMode,
    cs: Span<'_>,
    x: Span<'_>,
    n_tokens: usize,
    n_heads: usize,
    head_dim: usize,
    half: usize,
    stride: usize,
) -> Result<()> {
    const OP: &str = "rope";
    let row = n_heads * head_dim;
    if n_tokens == 0 || n_heads == 0 || half == 0 || 2 * half > head_dim || stride < row {
        return Err(Error::shape(
            OP,
            format!(
                "{n_tokens} tokens × {n_heads} heads, half {half}, head_dim {head_dim}, \
                 stride {stride}"
            ),
        ));
    }
    let co = cs.check(OP, "cs", n_tokens * 2 * half)?;
    let xo = x.check(OP, "x", (n_tokens - 1) * stride + row)?;
    let op = match mode {
        RopeMode::Normal => Op::RopeNormal,
        RopeMode::Neox => Op::RopeNeox,
    };
    let groups = grid(enc, OP, n_tokens * n_heads * half, wg(op))?;
    let params = [
        n_tokens as u32,
        n_heads as u32,
        head_dim as u32,
        half as u32,
        co,
        xo,
        super::to_u32(OP, "stride", stride)?,
        0,
    ];
    dispatch_op(enc, op, params, &[cs.buffer, x.buffer], groups)
}
