//! Split-K (flash-decoding) attention launcher for long contexts: `attn_split` runs one
//! workgroup per (head, token, chunk of keys) writing partial softmax states, and
//! `attn_combine` merges them, so a decode step over thousands of keys fills the GPU
//! instead of leaving one workgroup per head to walk every key.

use super::attention::AttnShape;
use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Keys per split at the least (the kernel's 128-key tile).
pub const ATTN_SPLIT_KEYS: usize = 128;
/// Most splits per (head, token).
pub const ATTN_MAX_SPLITS: usize = 64;
/// Contexts up to this many keys keep the single pass. One workgroup walks its keys at
/// ≈ 0.5 µs per key on an H200 (latency-bound), so splitting pays well before the extra
/// combine dispatch (≈ 5–10 µs) does not.
pub const ATTN_SPLIT_MIN_KEYS: usize = 256;
/// Workgroups a split dispatch aims for (a few per SM of an H100/H200).
const ATTN_SPLIT_TARGET_GROUPS: usize = 512;

/// Splits for `n_tokens` queries of `n_heads` heads whose longest key range is `max_keys`:
/// 1 (the single-pass kernel) up to `min_keys` keys (normally [`ATTN_SPLIT_MIN_KEYS`]) or
/// when the (head, token) workgroups already fill the GPU; else enough splits for
/// ≈ 512 workgroups, each of at least [`ATTN_SPLIT_KEYS`] keys, at most [`ATTN_MAX_SPLITS`].
pub fn attn_splits(max_keys: usize, n_tokens: usize, n_heads: usize, min_keys: usize) -> usize {
    let groups = (n_tokens * n_heads).max(1);
    if max_keys <= min_keys || groups >= ATTN_SPLIT_TARGET_GROUPS / 2 {
        return 1;
    }
    let by_keys = (max_keys / ATTN_SPLIT_KEYS).max(1);
    ATTN_SPLIT_TARGET_GROUPS
        .div_ceil(groups)
        .min(by_keys)
        .min(ATTN_MAX_SPLITS)
}

/// Floats of partial state [`record_attention_split`] needs.
pub fn attn_partial_len(s: &AttnShape, splits: usize) -> usize {
    s.n_tokens * s.n_heads * splits * (s.head_dim + 2)
}

/// Keys per split covering `max_keys` in `splits` parts.
fn split_keys(max_keys: usize, splits: usize) -> usize {
    max_keys.div_ceil(splits.max(1)).max(1)
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
