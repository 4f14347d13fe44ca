//! Split-K (flash-decoding) attention launcher for long contexts: `attn_split` runs one
//! workgroup per (head, token, chunk of keys) writing partial softmax states, and
//! `attn_combine` merges them, so a decode step over thousands of keys fills the GPU
//! instead of leaving one workgroup per head to walk every key.

use super::attention::AttnShape;
use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Keys per split at the least (a multiple of the kernel's 128-key tile).
pub const ATTN_SPLIT_KEYS: usize = 256;
/// Most splits per (head, token).
pub const ATTN_MAX_SPLITS: usize = 64;
/// Contexts up to this many keys keep the single pass (the combine dispatch costs more
/// than the split saves).
pub const ATTN_SPLIT_MIN_KEYS: usize = 512;
/// (head, token) workgroups from which the single pass already fills the GPU.
const ATTN_SPLIT_MAX_GROUPS: usize = 256;

/// Splits for `n_tokens` queries of `n_heads` heads whose longest key range is `max_keys`:
/// 1 (the single-pass kernel) up to `min_keys` keys (normally [`ATTN_SPLIT_MIN_KEYS`]) or
/// for wide batches.
pub fn attn_splits(max_keys: usize, n_tokens: usize, n_heads: usize, min_keys: usize) -> usize {
    if max_keys <= min_keys || n_tokens * n_heads >= ATTN_SPLIT_MAX_GROUPS {
        return 1;
    }
    max_keys.div_ceil(ATTN_SPLIT_KEYS).min(ATTN_MAX_SPLITS)
}

/// Floats of partial state [`record_attention_split`] needs.
pub fn attn_partial_len(s: &AttnShape, splits: usize) -> usize {
    s.n_tokens * s.n_heads * splits * (s.head_dim + 2)
}

/// Keys per split covering `max_keys` in `splits` parts (whole 128-key tiles).
fn split_keys(max_keys: usize, splits: usize) -> usize {
    max_keys.div_ceil(splits.max(1)).div_ceil(128).max(1) * 128
}

/// Record attention as [`record_attention`](super::attention::record_attention) does, in
/// `splits` parts over the keys (`max_keys` = the longest key range of any query, window
/// applied) plus a combine; `part` holds [`attn_partial_len`] floats of scratch.
#[allow(clippy::too_many_arguments)]
pub fn record_attention_split(
    enc: &mut StepEncoder<'_>,
    s: &AttnShape,
    splits: usize,
    max_keys: usize,
    q: Span<'_>,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
    meta: Span<'_>,
    part: &wgpu::Buffer,
    out: Span<'_>,
) -> Result<()> {
    const OP: &str = "attn_split";
    super::attention::check_shape(s)?;
    if splits == 0 || splits > ATTN_MAX_SPLITS || max_keys == 0 {
        return Err(Error::shape(
            OP,
            format!("{splits} splits (1..={ATTN_MAX_SPLITS}) of {max_keys} keys"),
        ));
    }
    let hd = s.head_dim;
    let qo = q.check(OP, "q", (s.n_tokens - 1) * s.q_stride + s.n_heads * hd)?;
    let oo = out.check(OP, "out", s.n_tokens * s.n_heads * hd)?;
    let mo = meta.check(OP, "meta", 2 * s.n_tokens)?;
    Span::whole(part).check(OP, "part", attn_partial_len(s, splits))?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let heads = to_u32(OP, "heads", s.n_heads)?;
    let tokens = to_u32(OP, "tokens", s.n_tokens)?;
    if heads > max || tokens > max {
        return Err(Error::shape(
            OP,
            format!("grid {heads} x {tokens} exceeds {max}"),
        ));
    }
    let per = to_u32(OP, "keys per split", split_keys(max_keys, splits))?;
    let mut params = super::attention::attn_params(s, qo, mo)?;
    params[6] = per;
    let bufs = [q.buffer, k_cache, v_cache, meta.buffer, part];
    dispatch_op(
        enc,
        Op::AttnSplit,
        params,
        &bufs,
        [heads, tokens, splits as u32],
    )?;
    let params = [heads, hd as u32, splits as u32, oo, 0, 0, 0, 0];
    let bufs = [part, out.buffer];
    dispatch_op(enc, Op::AttnCombine, params, &bufs, [heads, tokens, 1])
}
