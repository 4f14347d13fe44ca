//! `argmax` launcher: the index of the largest value of each row (greedy decoding).

use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Record `out[r] = argmax(x[r · stride .. r · stride + n])` for `rows` rows (`out`: u32
/// words). Ties go to the lowest index; NaN is never picked.
pub fn record_argmax(
    enc: &mut StepEncoder<'_>,
    x: Span<'_>,
    out: Span<'_>,
    rows: usize,
    n: usize,
    stride: usize,
) -> Result<()> {
    const OP: &str = "argmax";
    if rows == 0 || n == 0 || stride < n {
        return Err(Error::shape(
            OP,
            format!("{rows} rows of {n} (stride {stride})"),
        ));
    }
    let xo = x.check(OP, "x", (rows - 1) * stride + n)?;
    let oo = out.check(OP, "out", rows)?;
    let r = to_u32(OP, "rows", rows)?;
    if r > enc.ctx().limits.max_compute_workgroups_per_dimension {
        return Err(Error::shape(
            OP,
            format!("{rows} rows exceed the grid limit"),
        ));
    }
    let params = [n as u32, r, xo, stride as u32, oo, 0, 0, 0];
    dispatch_op(enc, Op::Argmax, params, &[x.buffer, out.buffer], [r, 1, 1])
}
