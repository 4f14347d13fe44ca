//! `act_q8` launcher: a matmul input quantized to 8-bit units once, for the Dp4a
//! `gemv_multi` (which would otherwise quantize every token's x in every workgroup).

use super::{dispatch_op, grid, to_u32, wg};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Bytes of the `act_q8` form of `n_tokens` rows of `cols` values: 32 bytes of codes and
/// 8 of scales per 32-element unit.
pub fn act_q8_bytes(n_tokens: usize, cols: usize) -> u64 {
    (n_tokens * (cols / 32)) as u64 * 40
}

/// Record the quantization of `x` (`[n_tokens, cols]` f32 from float `x_offset`, a
/// multiple of 4) into a scratch buffer of this recording and return it. `cols` must be a
/// multiple of 32 (the unit). `perm`: each 8 elements stored as 0, 2, 4, 6, 1, 3, 5, 7
/// (for the weight formats of [`crate::registry::act_q8_perm`]).
pub fn record_act_q8(
    enc: &mut StepEncoder<'_>,
    x: &wgpu::Buffer,
    x_offset: usize,
    n_tokens: usize,
    cols: usize,
    perm: bool,
) -> Result<wgpu::Buffer> {
    const OP: &str = "act_q8";
    if n_tokens == 0 || cols == 0 || !cols.is_multiple_of(32) || !x_offset.is_multiple_of(4) {
        return Err(Error::shape(
            OP,
            format!(
                "[{n_tokens}, {cols}] from {x_offset}: non-empty, cols % 32 == 0, offset % 4 == 0"
            ),
        ));
    }
    let need = (x_offset + n_tokens * cols) as u64 * 4;
    if x.size() < need {
        return Err(Error::shape(
            OP,
            format!("x holds {} bytes, needs {need}", x.size()),
        ));
    }
    let units = n_tokens * (cols / 32);
    let q = enc.scratch(act_q8_bytes(n_tokens, cols));
    let params = [
        to_u32(OP, "n_tokens", n_tokens)?,
        to_u32(OP, "cols", cols)?,
        to_u32(OP, "x_offset", x_offset / 4)?,
        u32::from(perm),
        0,
        0,
        0,
        0,
    ];
    let groups = grid(enc, OP, units, wg(Op::ActQ8))?;
    dispatch_op(enc, Op::ActQ8, params, &[x, &q], groups)?;
    Ok(q)
}
