//! RMSNorm launcher: `out[r] = x[r] / rms(x[r]) · w` over `rows` rows of `cols` values.

use super::{dispatch_op, grid, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Record RMSNorm of `rows` contiguous rows of `cols` floats from `x` into `out` with
/// weights `w` (`cols` floats from its offset). `x` and `out` must be different buffers.
pub fn record_rms_norm(
    enc: &mut StepEncoder<'_>,
    w: Span<'_>,
    x: Span<'_>,
    out: Span<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<()> {
    record_rms_norm_grouped(enc, w, x, out, rows, cols, eps, rows, 0)
}

/// [`record_rms_norm`] over rows in groups of `group` (one token's heads) whose groups
/// start `stride` floats apart in both `x` and `out` (rows of an interleaved q|k|v buffer).
#[allow(clippy::too_many_arguments)]
pub fn record_rms_norm_grouped(
    enc: &mut StepEncoder<'_>,
    w: Span<'_>,
    x: Span<'_>,
    out: Span<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
    group: usize,
    stride: usize,
) -> Result<()> {
    const OP: &str = "rms_norm";
    let groups = rows.checked_div(group).unwrap_or(0);
    if rows == 0 || cols == 0 || group == 0 || groups * group != rows {
        return Err(Error::shape(
            OP,
            format!("[{rows}, {cols}] in groups of {group} (non-empty, whole groups)"),
        ));
    }
    if groups > 1 && stride < group * cols {
        return Err(Error::shape(
            OP,
            format!("stride {stride} < group width {}", group * cols),
        ));
    }
    let extent = (groups - 1) * stride + group * cols;
    let wo = w.check(OP, "w", cols)?;
    let xo = x.check(OP, "x", extent)?;
    let oo = out.check(OP, "out", extent)?;
    let groups = grid(enc, OP, rows, 1)?;
    let params = [
        rows as u32,
        cols as u32,
        eps.to_bits(),
        xo,
        oo,
        wo,
        super::to_u32(OP, "group", group)?,
        super::to_u32(OP, "stride", stride)?,
    ];
    dispatch_op(
        enc,
        Op::RmsNorm,
        params,
        &[w.buffer, x.buffer, out.buffer],
        groups,
    )
}

/// Record the residual add fused with the next RMSNorm over `rows` rows of `cols` floats:
/// `h += src`, then `out = rms_norm(h) · w` (`out` from its offset; `h`, `src` from 0).
/// Three different buffers.
#[allow(clippy::too_many_arguments)]
pub fn record_add_rms_norm(
    enc: &mut StepEncoder<'_>,
    w: Span<'_>,
    src: &wgpu::Buffer,
    h: &wgpu::Buffer,
    out: Span<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<()> {
    const OP: &str = "add_rms_norm";
    if rows == 0 || cols == 0 {
        return Err(Error::shape(OP, format!("[{rows}, {cols}] is empty")));
    }
    let len = rows * cols;
    let wo = w.check(OP, "w", cols)?;
    Span::whole(src).check(OP, "src", len)?;
    Span::whole(h).check(OP, "h", len)?;
    let oo = out.check(OP, "out", len)?;
    let groups = grid(enc, OP, rows, 1)?;
    let params = [rows as u32, cols as u32, eps.to_bits(), wo, oo, 0, 0, 0];
    dispatch_op(
        enc,
        Op::AddRmsNorm,
        params,
        &[w.buffer, src, h, out.buffer],
        groups,
    )
}
