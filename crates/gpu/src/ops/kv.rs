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

/// Where a step's K and V rows come from and go to.
#[derive(Debug, Clone, Copy)]
pub struct KvWriteIo<'a> {
    /// Token `t`'s K row starts at `k + t · src_stride`.
    pub k: Span<'a>,
    /// Token `t`'s V row starts at `v + t · src_stride`.
    pub v: Span<'a>,
    pub src_stride: usize,
    /// One slot per token (slot = block · block size + position % block size).
    pub slots: Span<'a>,
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
}

/// Record the write of `n_tokens` K and V rows of `row_len` floats into the caches (u32
/// words of `dtype`), token `t` to slot `slots[t]`, in one dispatch. `row_len` must be
/// even; slots must lie inside the caches (the caller checks its block tables).
pub fn record_kv_write(
    enc: &mut StepEncoder<'_>,
    io: &KvWriteIo<'_>,
    dtype: CacheDtype,
    n_tokens: usize,
    row_len: usize,
) -> Result<()> {
    const OP: &str = "kv_write";
    let stride = io.src_stride;
    if n_tokens == 0 || row_len == 0 || !row_len.is_multiple_of(2) || stride < row_len {
        return Err(Error::shape(
            OP,
            format!("{n_tokens} tokens of {row_len} values (even, > 0), stride {stride}"),
        ));
    }
    let extent = (n_tokens - 1) * stride + row_len;
    let ko = io.k.check(OP, "k", extent)?;
    let vo = io.v.check(OP, "v", extent)?;
    let sl = io.slots.check(OP, "slots", n_tokens)?;
    for (name, c) in [("k_cache", io.k_cache), ("v_cache", io.v_cache)] {
        Span::whole(c).check(OP, name, dtype.words(row_len))?;
    }
    let groups = grid(enc, OP, n_tokens * row_len / 2, wg(Op::KvWrite))?;
    let params = [
        n_tokens as u32,
        row_len as u32,
        u32::from(dtype == CacheDtype::F16),
        sl,
        ko,
        vo,
        super::to_u32(OP, "src_stride", stride)?,
        0,
    ];
    let storage = [
        io.k.buffer,
        io.v.buffer,
        io.slots.buffer,
        io.k_cache,
        io.v_cache,
    ];
    dispatch_op(enc, Op::KvWrite, params, &storage, groups)
}
