//! `kv_write` launcher: f32 K or V rows into a paged f16 or f32 cache through slot indices.

use super::{dispatch_op, grid, wg, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Element type of a GPU KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDtype {
    F16,
    F32,
}

impl CacheDtype {
    /// u32 words per `n` values.
    pub fn words(self, n: usize) -> usize {
        match self {
            CacheDtype::F16 => n.div_ceil(2),
            CacheDtype::F32 => n,
        }
    }
}

/// Record the write of `n_tokens` rows of `row_len` floats (`src`, rows `src_stride` floats
/// apart) into `cache` (u32 words,
/// `dtype`), token `t` to slot `slots[t]` (slot = block · block size + position % block
/// size); `cache_slots` is the cache's slot count, for bounds. `row_len` must be even.
#[allow(clippy::too_many_arguments)]
pub fn record_kv_write(
    enc: &mut StepEncoder<'_>,
    src: Span<'_>,
    slots: Span<'_>,
    cache: &wgpu::Buffer,
    dtype: CacheDtype,
    n_tokens: usize,
    row_len: usize,
    src_stride: usize,
) -> Result<()> {
    const OP: &str = "kv_write";
    if n_tokens == 0 || row_len == 0 || !row_len.is_multiple_of(2) || src_stride < row_len {
        return Err(Error::shape(
            OP,
            format!("{n_tokens} tokens of {row_len} values (even, > 0), stride {src_stride}"),
        ));
    }
    let so = src.check(OP, "src", (n_tokens - 1) * src_stride + row_len)?;
    let sl = slots.check(OP, "slots", n_tokens)?;
    Span::whole(cache).check(OP, "cache", dtype.words(row_len))?;
    let groups = grid(enc, OP, n_tokens * row_len / 2, wg(Op::KvWrite))?;
    let is_f16 = u32::from(dtype == CacheDtype::F16);
    let stride = super::to_u32(OP, "src_stride", src_stride)?;
    let params = [
        n_tokens as u32,
        row_len as u32,
        is_f16,
        sl,
        so,
        stride,
        0,
        0,
    ];
    dispatch_op(
        enc,
        Op::KvWrite,
        params,
        &[src.buffer, slots.buffer, cache],
        groups,
    )
}
