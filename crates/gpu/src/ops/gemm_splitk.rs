//! Split-K coop GEMM: the reduce that sums the S K-splits' partial outputs (step scratch
//! laid out `[S][n_tokens][rows]`) into the real output (`gemm_splitk_reduce`), and the
//! scratch size the matmul launcher may spend on them.

use super::{dispatch_op, to_u32, wg, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

const NAME: &str = "gemm_splitk_reduce";

/// Where a split-K reduce reads the partials and writes the sums.
#[derive(Debug, Clone, Copy)]
pub struct SplitkReduceIo<'a> {
    /// `splits * n_tokens * rows` floats from the span's offset: partial (split z, token t,
    /// row r) at `(z * n_tokens + t) * rows + r`.
    pub partials: Span<'a>,
    /// Row r of token t goes to `out.offset + t * out_stride + row_offset + r`.
    pub out: Span<'a>,
    /// Floats between tokens in `out` (at least `row_offset + rows`).
    pub out_stride: usize,
    /// Output row of partial row 0 (a weight chunk's first row).
    pub row_offset: usize,
    pub rows: usize,
    pub n_tokens: usize,
    pub splits: usize,
}

/// Record `out[t, row_offset + r] = Σ_z partials[z, t, r]` (splits summed in order).
pub fn record_gemm_splitk_reduce(enc: &mut StepEncoder<'_>, io: &SplitkReduceIo<'_>) -> Result<()> {
    let (rows, n, splits) = (io.rows, io.n_tokens, io.splits);
    if rows == 0 || n == 0 || splits == 0 || io.out_stride < io.row_offset + rows {
        return Err(Error::shape(
            NAME,
            format!(
                "rows {rows}, n_tokens {n}, splits {splits} (all > 0), out_stride {} \
                 (>= row_offset {} + rows)",
                io.out_stride, io.row_offset
            ),
        ));
    }
    let in_len = splits
        .checked_mul(n)
        .and_then(|v| v.checked_mul(rows))
        .ok_or_else(|| Error::shape(NAME, "partials length overflows"))?;
    let in_offset = io.partials.check(NAME, "partials", in_len)?;
    let out_len = (n - 1) * io.out_stride + io.row_offset + rows;
    let out_offset = io.out.check(NAME, "out", out_len)?;
    let max_dim = enc.ctx().limits.max_compute_workgroups_per_dimension.max(1);
    let groups = [
        to_u32(
            NAME,
            "workgroups",
            rows.div_ceil(wg(Op::GemmSplitkReduce) as usize),
        )?,
        to_u32(NAME, "n_tokens", n)?,
        1,
    ];
    if groups[0] > max_dim || groups[1] > max_dim {
        return Err(Error::TooLarge {
            what: format!("{NAME} grid {groups:?}"),
            bytes: u64::from(groups[0].max(groups[1])),
            limit: u64::from(max_dim),
        });
    }
    let params = [
        to_u32(NAME, "rows", rows)?,
        to_u32(NAME, "n_tokens", n)?,
        to_u32(NAME, "splits", splits)?,
        to_u32(NAME, "row_offset", io.row_offset)?,
        to_u32(NAME, "out_stride", io.out_stride)?,
        out_offset,
        in_offset,
        0,
    ];
    let bufs = [io.partials.buffer, io.out.buffer];
    dispatch_op(enc, Op::GemmSplitkReduce, params, &bufs, groups)
}

/// `splits` capped so the partials of `n_tokens` x `rows` per split fit one storage
/// binding of `max_binding` bytes; 1 when fewer than 2 fit.
pub fn splits_within(splits: usize, rows: usize, n_tokens: usize, max_binding: u64) -> usize {
    let per_split = (rows as u64 * n_tokens as u64 * 4).max(1);
    let fit = usize::try_from(max_binding / per_split).unwrap_or(usize::MAX);
    match splits.min(fit) {
        s if s >= 2 => s,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::splits_within;

    #[test]
    fn splits_shrink_to_fit_the_binding() {
        // 4096 rows x 8 tokens = 128 KiB per split.
        assert_eq!(splits_within(5, 4096, 8, 1 << 30), 5);
        assert_eq!(splits_within(5, 4096, 8, 3 << 17), 3);
        assert_eq!(splits_within(5, 4096, 8, (2 << 17) - 4), 1);
        assert_eq!(splits_within(1, 4096, 8, 1 << 30), 1);
    }
}
