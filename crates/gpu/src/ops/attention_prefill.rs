//! Flash-style prefill attention launcher (`attn_prefill`): query tokens in blocks of up to
//! [`ATTN_PREFILL_BLOCK`] consecutive tokens of one sequence share each K/V tile through
//! workgroup memory, instead of every query reading every key from global memory.

use super::attention::{attn_params, check_shape, AttnShape};
use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Query tokens per block (`BQ` in attn_prefill.wgsl).
pub const ATTN_PREFILL_BLOCK: usize = 16;

/// The query blocks of a step whose sequences hold `lens` consecutive tokens each (in
/// step order): `(first token, count)` pairs, flattened, for the `blocks` words.
pub fn attn_prefill_blocks(lens: &[usize]) -> Vec<u32> {
    query_blocks(lens, ATTN_PREFILL_BLOCK)
}

/// [`attn_prefill_blocks`] with blocks of up to `size` tokens.
pub fn query_blocks(lens: &[usize], size: usize) -> Vec<u32> {
    let mut v = Vec::new();
    let mut start = 0;
    for &n in lens {
        let mut j = 0;
        while j < n {
            let take = (n - j).min(size.max(1));
            v.extend([(start + j) as u32, take as u32]);
            j += take;
        }
        start += n;
    }
    v
}

/// Record attention as [`record_attention`](super::attention::record_attention) does, by
/// query blocks: `blocks` holds `n_blocks` (first token, count) pairs (see
/// [`attn_prefill_blocks`]; each block's tokens are consecutive positions of one sequence).
/// `q` is read from offset 0 of its buffer.
#[allow(clippy::too_many_arguments)]
pub fn record_attention_prefill(
    enc: &mut StepEncoder<'_>,
    s: &AttnShape,
    q: &wgpu::Buffer,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
    meta: Span<'_>,
    blocks: Span<'_>,
    n_blocks: usize,
    out: Span<'_>,
) -> Result<()> {
    let (params, grid) = block_params(enc, "attn_prefill", s, q, meta, blocks, n_blocks, out)?;
    let bufs = [q, k_cache, v_cache, meta.buffer, out.buffer];
    dispatch_op(enc, Op::AttnPrefill, params, &bufs, grid)
}

/// The checks, params and grid the prompt-attention kernels share (`attn_prefill`,
/// `attn_flash`): q is read from offset 0, so params words 6 and 7 carry the block and
/// output offsets; one workgroup per (head, block).
#[allow(clippy::too_many_arguments)]
pub(crate) fn block_params(
    enc: &StepEncoder<'_>,
    op: &'static str,
    s: &AttnShape,
    q: &wgpu::Buffer,
    meta: Span<'_>,
    blocks: Span<'_>,
    n_blocks: usize,
    out: Span<'_>,
) -> Result<([u32; 8], [u32; 3])> {
    check_shape(s)?;
    if n_blocks == 0 || n_blocks > s.n_tokens {
        return Err(Error::shape(
            op,
            format!("{n_blocks} blocks for {} tokens", s.n_tokens),
        ));
    }
    let hd = s.head_dim;
    Span::whole(q).check(op, "q", (s.n_tokens - 1) * s.q_stride + s.n_heads * hd)?;
    let oo = out.check(op, "out", s.n_tokens * s.n_heads * hd)?;
    let mo = meta.check(op, "meta", 2 * s.n_tokens)?;
    let bo = blocks.check(op, "blocks", 2 * n_blocks)?;
    if meta.buffer != blocks.buffer {
        return Err(Error::shape(op, "blocks must live in the meta buffer"));
    }
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let heads = to_u32(op, "heads", s.n_heads)?;
    let nb = to_u32(op, "blocks", n_blocks)?;
    if heads > max || nb > max {
        return Err(Error::shape(
            op,
            format!("grid {heads} x {nb} exceeds {max}"),
        ));
    }
    let mut params = attn_params(s, 0, mo)?;
    params[6] = bo;
    params[7] = oo;
    Ok((params, [heads, nb, 1]))
}
