//! Multi-head latent attention (MLA) launchers: `mla_latent` (the q_a / kv_a RMSNorms, RoPE
//! of the shared k_pe and the paged latent cache write, one workgroup per token) and
//! `attn_mla` (absorbed attention of every head over the latent rows, single pass or split-K
//! with `attn_combine` merging the partials).

use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Largest `kv_lora_rank` the kernel keeps per thread (`MAX_R` in attn_mla.wgsl).
pub const MLA_MAX_RANK: usize = 512;
/// Largest latent row `kv_lora_rank + rope_dim` (`MAX_W`; 576 for GLM-4.7-Flash and
/// DeepSeek-V3).
pub const MLA_MAX_WIDTH: usize = 640;
/// Heads one `attn_mla` workgroup attends together, sharing every latent row it loads
/// (`HG`).
pub const MLA_HEADS_PER_GROUP: usize = 4;

/// Shape of an MLA layer's latent and attention dispatches.
#[derive(Debug, Clone, Copy)]
pub struct MlaShape {
    pub n_tokens: usize,
    pub n_heads: usize,
    /// Query bottleneck width (0: queries come straight from the hidden state).
    pub q_lora: usize,
    /// `kv_lora_rank`: the latent `c_kv` and the attention output per head.
    pub rank: usize,
    /// `qk_rope_head_dim`: the roped part of queries and of the shared key.
    pub rope_dim: usize,
    /// Half-split RoPE pairs (NeoX); adjacent pairs otherwise.
    pub neox: bool,
    /// Softmax scale of the scores.
    pub scale: f32,
    /// Epsilon of the q_a / kv_a RMSNorms.
    pub eps: f32,
}

impl MlaShape {
    /// Values one token takes in the latent cache: `rank + rope_dim`.
    pub fn width(&self) -> usize {
        self.rank + self.rope_dim
    }

    pub(super) fn check(&self, op: &'static str) -> Result<()> {
        let ok = self.n_tokens > 0
            && self.n_heads > 0
            && self.rank > 0
            && self.rank.is_multiple_of(2)
            && self.rank <= MLA_MAX_RANK
            && self.rope_dim > 0
            && self.rope_dim.is_multiple_of(2)
            && self.width() <= MLA_MAX_WIDTH
            && self.rope_dim < 1 << 31;
        if ok {
            Ok(())
        } else {
            Err(Error::shape(
                op,
                format!("{self:?}: rank even ≤ {MLA_MAX_RANK}, rope dim even, rank + rope ≤ {MLA_MAX_WIDTH}"),
            ))
        }
    }

    pub(super) fn rope_word(&self) -> u32 {
        self.rope_dim as u32 | u32::from(self.neox) << 31
    }
}

/// Buffers of [`record_mla_latent`].
#[derive(Debug, Clone, Copy)]
pub struct MlaLatentIo<'a> {
    /// `w_q (q_lora) ‖ w_kv (rank)` RMSNorm weights.
    pub norms: Span<'a>,
    /// Per token `[c_q ‖ c_kv ‖ k_pe]` (`q_lora + rank + rope_dim` floats), from offset 0.
    pub x: &'a wgpu::Buffer,
    /// RoPE rows: per token `rope_dim` floats (cos ‖ sin of the half angles).
    pub cs: Span<'a>,
    /// One cache slot per token (block · 16 + position % 16).
    pub slots: Span<'a>,
    /// The layer's latent cache, f16 pairs, `rank + rope_dim` values per slot.
    pub cache: &'a wgpu::Buffer,
    /// Normed c_q out (`n_tokens × q_lora` from offset 0); any other buffer when q_lora = 0.
    pub cq: &'a wgpu::Buffer,
}

/// Record the latent write of `s.n_tokens` tokens (one dispatch). Slots must lie inside
/// the cache (the caller checks its block tables).
pub fn record_mla_latent(
    enc: &mut StepEncoder<'_>,
    s: &MlaShape,
    io: &MlaLatentIo<'_>,
) -> Result<()> {
    const OP: &str = "mla_latent";
    s.check(OP)?;
    let n = s.n_tokens;
    let wo = io.norms.check(OP, "norms", s.q_lora + s.rank)?;
    Span::whole(io.x).check(OP, "x", n * (s.q_lora + s.width()))?;
    let co = io.cs.check(OP, "cs", n * s.rope_dim)?;
    let so = io.slots.check(OP, "slots", n)?;
    Span::whole(io.cq).check(OP, "cq", n * s.q_lora)?;
    Span::whole(io.cache).check(OP, "cache", s.width() / 2)?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let groups = to_u32(OP, "tokens", n)?;
    if groups > max {
        return Err(Error::shape(
            OP,
            format!("{n} tokens exceed {max} workgroups"),
        ));
    }
    let params = [
        to_u32(OP, "q_lora", s.q_lora)?,
        s.rank as u32,
        s.rope_word(),
        s.eps.to_bits(),
        wo,
        so,
        co,
        0,
    ];
    let bufs = [
        io.norms.buffer,
        io.x,
        io.cs.buffer,
        io.slots.buffer,
        io.cache,
        io.cq,
    ];
    dispatch_op(enc, Op::MlaLatent, params, &bufs, [groups, 1, 1])
}

/// Buffers of [`record_attn_mla`].
#[derive(Debug, Clone, Copy)]
pub struct MlaAttnIo<'a> {
    /// Absorbed queries `q̃ = W_UKᵀ q_nope`: `n_tokens × n_heads × rank` from offset 0.
    pub q_abs: &'a wgpu::Buffer,
    /// Unrotated rope parts of the queries: `n_tokens × n_heads × rope_dim` from offset 0.
    pub q_pe: &'a wgpu::Buffer,
    /// RoPE rows, `rope_dim` floats per query token.
    pub cs: Span<'a>,
    /// The layer's latent cache.
    pub cache: &'a wgpu::Buffer,
    /// 2 words per query token (position, word index in `meta` of its block table).
    pub meta: Span<'a>,
    /// Split-K scratch ([`mla_partial_len`] floats); needed when splits > 1.
    pub part: Option<&'a wgpu::Buffer>,
    /// `n_tokens × n_heads × rank` outputs (the attended latent per head).
    pub out: Span<'a>,
}

/// Keys per `attn_mla` split: one key tile (`TK`), so a split is a single pass over it.
pub const MLA_SPLIT_KEYS: usize = 32;
/// Contexts up to this many keys keep the single pass (the combine costs a dispatch).
pub const MLA_SPLIT_MIN_KEYS: usize = 64;

/// Splits of `attn_mla` for `n_tokens` queries of `groups` head groups over at most
/// `max_keys` keys: one per [`MLA_SPLIT_KEYS`] keys above `min_keys` (normally
/// [`MLA_SPLIT_MIN_KEYS`]), while the grid stays under ~512 workgroups. With the few head groups of decode (GLM-4.7-Flash:
/// 5) a single pass leaves almost every SM idle, and each workgroup walks its keys tile
/// after tile.
pub fn mla_splits(max_keys: usize, n_tokens: usize, groups: usize, min_keys: usize) -> usize {
    let wgs = (n_tokens * groups).max(1);
    if max_keys <= min_keys || wgs >= 256 {
        return 1;
    }
    // wgs < 256, so the cap is at least 2.
    let cap = (512 / wgs).min(super::attention_split::ATTN_MAX_SPLITS);
    max_keys.div_ceil(MLA_SPLIT_KEYS).clamp(1, cap)
}

/// Floats of partial state [`record_attn_mla`] needs for `splits` splits.
pub fn mla_partial_len(s: &MlaShape, splits: usize) -> usize {
    s.n_tokens * s.n_heads * splits * (s.rank + 2)
}

/// Record absorbed MLA attention of every query token against its sequence's latent rows
/// (positions `0..=pos`, all written), in `splits` parts over `max_keys` (the longest key
/// range) merged by `attn_combine` when `splits > 1`.
pub fn record_attn_mla(
    enc: &mut StepEncoder<'_>,
    s: &MlaShape,
    splits: usize,
    max_keys: usize,
    io: &MlaAttnIo<'_>,
) -> Result<()> {
    const OP: &str = "attn_mla";
    s.check(OP)?;
    let max_splits = super::attention_split::ATTN_MAX_SPLITS;
    if splits == 0 || splits > max_splits || max_keys == 0 {
        return Err(Error::shape(
            OP,
            format!("{splits} splits (1..={max_splits}) of {max_keys} keys"),
        ));
    }
    let (n, h) = (s.n_tokens, s.n_heads);
    Span::whole(io.q_abs).check(OP, "q_abs", n * h * s.rank)?;
    Span::whole(io.q_pe).check(OP, "q_pe", n * h * s.rope_dim)?;
    let co = io.cs.check(OP, "cs", n * s.rope_dim)?;
    let mo = io.meta.check(OP, "meta", 2 * n)?;
    let oo = io.out.check(OP, "out", n * h * s.rank)?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let (heads, tokens) = (to_u32(OP, "heads", h)?, to_u32(OP, "tokens", n)?);
    let groups = heads.div_ceil(MLA_HEADS_PER_GROUP as u32);
    if groups > max || tokens > max {
        return Err(Error::shape(
            OP,
            format!("grid {heads} x {tokens} exceeds {max}"),
        ));
    }
    let per = to_u32(OP, "keys per split", max_keys.div_ceil(splits).max(1))?;
    let mut params = [
        heads,
        s.rank as u32,
        s.rope_word(),
        s.scale.to_bits(),
        mo,
        per,
        oo,
        co,
    ];
    let head = [io.q_abs, io.q_pe, io.cs.buffer, io.cache, io.meta.buffer];
    if splits == 1 {
        let bufs = [head[0], head[1], head[2], head[3], head[4], io.out.buffer];
        return dispatch_op(enc, Op::AttnMla, params, &bufs, [groups, tokens, 1]);
    }
    let part = io
        .part
        .ok_or_else(|| Error::shape(OP, format!("{splits} splits need a partial buffer")))?;
    Span::whole(part).check(OP, "part", mla_partial_len(s, splits))?;
    params[6] = 0;
    let bufs = [head[0], head[1], head[2], head[3], head[4], part];
    dispatch_op(
        enc,
        Op::AttnMla,
        params,
        &bufs,
        [groups, tokens, splits as u32],
    )?;
    let params = [heads, s.rank as u32, splits as u32, oo, 0, 0, 0, 0];
    dispatch_op(
        enc,
        Op::AttnCombine,
        params,
        &[part, io.out.buffer],
        [heads, tokens, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_splits_mla_into_key_tiles() {
        // GLM-4.7-Flash decode: 5 head groups, one token.
        assert_eq!(mla_splits(64, 1, 5, MLA_SPLIT_MIN_KEYS), 1);
        assert_eq!(mla_splits(80, 1, 5, MLA_SPLIT_MIN_KEYS), 3);
        assert_eq!(mla_splits(4096, 1, 5, MLA_SPLIT_MIN_KEYS), 64);
        assert_eq!(mla_splits(4096, 1, 5, usize::MAX), 1);
        // Prefill chunks fill the GPU already.
        assert_eq!(mla_splits(4096, 64, 5, MLA_SPLIT_MIN_KEYS), 1);
    }
}
