//! `kv_write` launcher: f32 K or V rows into a paged cache (f16, f32, or FP8 E4M3 / INT8
//! codes with a scale per token per kv head) through slot indices.

use super::{dispatch_op, grid, wg, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Element type of a GPU KV cache.
///
/// The quantized dtypes store each head row (one token's `head_dim` values of one kv head)
/// as its f32 scale word then its byte codes, 4 per word: [`CacheDtype::row_words`] words.
/// Codes and scales follow the CPU cache's rule bit for bit (`amax / 448` or `amax / 127`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDtype {
    F16,
    F32,
    /// FP8 E4M3 codes, scale `amax / 448` per row.
    Fp8E4M3,
    /// INT8 codes in −127..=127, scale `amax / 127` per row.
    Int8,
}

impl CacheDtype {
    /// u32 words per `n` values of a float cache (F16, F32). Quantized caches are sized by
    /// head rows: use [`CacheDtype::slot_words`].
    pub fn words(self, n: usize) -> usize {
        match self {
            CacheDtype::F16 => n.div_ceil(2),
            CacheDtype::F32 => n,
            CacheDtype::Fp8E4M3 | CacheDtype::Int8 => n.div_ceil(4),
        }
    }

    /// True for the one-byte code dtypes.
    pub fn is_quantized(self) -> bool {
        matches!(self, CacheDtype::Fp8E4M3 | CacheDtype::Int8)
    }

    /// u32 words of one head row of `head_dim` values (quantized: scale + codes).
    pub fn row_words(self, head_dim: usize) -> usize {
        if self.is_quantized() {
            1 + head_dim.div_ceil(4)
        } else {
            self.words(head_dim)
        }
    }

    /// u32 words of one token slot (`n_kv_heads` head rows of `head_dim` values).
    pub fn slot_words(self, n_kv_heads: usize, head_dim: usize) -> usize {
        n_kv_heads * self.row_words(head_dim)
    }

    /// The dtype's code in the shaders (`KV_*` in kv_codes.wgsl).
    pub(crate) fn code(self) -> u32 {
        match self {
            CacheDtype::F32 => 0,
            CacheDtype::F16 => 1,
            CacheDtype::Int8 => 2,
            CacheDtype::Fp8E4M3 => 3,
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

/// Record the write of `n_tokens` K and V rows of `row_len` floats (one head: quantized
/// dtypes keep one scale per row) into the caches, token `t` to slot `slots[t]`, in one
/// dispatch. `row_len` must be even; slots must lie inside the caches (the caller checks
/// its block tables). See [`record_kv_write_heads`] for rows of several kv heads.
pub fn record_kv_write(
    enc: &mut StepEncoder<'_>,
    io: &KvWriteIo<'_>,
    dtype: CacheDtype,
    n_tokens: usize,
    row_len: usize,
) -> Result<()> {
    record_kv_write_heads(enc, io, dtype, n_tokens, 1, row_len)
}

/// Record the write of `n_tokens` K and V rows of `n_kv_heads × head_dim` floats into the
/// caches (quantized dtypes: one scale per token per kv head), token `t` to slot
/// `slots[t]`, in one dispatch. `head_dim` must be even; slots must lie inside the caches.
pub fn record_kv_write_heads(
    enc: &mut StepEncoder<'_>,
    io: &KvWriteIo<'_>,
    dtype: CacheDtype,
    n_tokens: usize,
    n_kv_heads: usize,
    head_dim: usize,
) -> Result<()> {
    const OP: &str = "kv_write";
    let stride = io.src_stride;
    let row_len = n_kv_heads * head_dim;
    if n_tokens == 0 || row_len == 0 || !head_dim.is_multiple_of(2) || stride < row_len {
        return Err(Error::shape(
            OP,
            format!(
                "{n_tokens} tokens of {n_kv_heads} heads of {head_dim} values (even, > 0), \
                 stride {stride}"
            ),
        ));
    }
    let extent = (n_tokens - 1) * stride + row_len;
    let ko = io.k.check(OP, "k", extent)?;
    let vo = io.v.check(OP, "v", extent)?;
    let sl = io.slots.check(OP, "slots", n_tokens)?;
    for (name, c) in [("k_cache", io.k_cache), ("v_cache", io.v_cache)] {
        Span::whole(c).check(OP, name, dtype.slot_words(n_kv_heads, head_dim))?;
    }
    // Float caches: one thread per value pair; quantized: one per K or V head row.
    let threads = if dtype.is_quantized() {
        n_tokens * n_kv_heads * 2
    } else {
        n_tokens * row_len / 2
    };
    let groups = grid(enc, OP, threads, wg(Op::KvWrite))?;
    let params = [
        n_tokens as u32,
        super::to_u32(OP, "row_len", row_len)?,
        dtype.code(),
        sl,
        ko,
        vo,
        super::to_u32(OP, "src_stride", stride)?,
        super::to_u32(OP, "head_dim", head_dim)?,
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
