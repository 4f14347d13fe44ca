//! RMSNorm launcher: `out[r] = x[r] / rms(x[r]) · w` over `rows` rows of `cols` values.

use super::{dispatch_op, grid, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Record RMSNorm of `rows` rows of `cols` floats from `x` into `out` with weights `w`
/// (`cols` floats from its offset). `x` and `out` must be different buffers.
pub fn record_rms_norm(
    enc: &mut StepEncoder<'_>,
    w: Span<'_>,
    x: Span<'_>,
    out: Span<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<()> {
    const OP: &str = "rms_norm";
    if rows == 0 || cols == 0 {
        return Err(Error::shape(OP, format!("[{rows}, {cols}] is empty")));
    }
    let wo = w.check(OP, "w", cols)?;
    let xo = x.check(OP, "x", rows * cols)?;
    let oo = out.check(OP, "out", rows * cols)?;
    let groups = grid(enc, OP, rows, 1)?;
    let params = [rows as u32, cols as u32, eps.to_bits(), xo, oo, wo, 0, 0];
    dispatch_op(
        enc,
        Op::RmsNorm,
        params,
        &[w.buffer, x.buffer, out.buffer],
        groups,
    )
}
