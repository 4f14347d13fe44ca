//! A layer's attention in a GPU step: the single-pass kernel, or split-K (flash-decoding)
//! with a combine when few queries attend over a long context; flash-style query blocks
//! for prompt chunks when asked (`MARLIN_GPU_PREFILL_ATTN=1`).

use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    attn_flash_supported, attn_partial_len, attn_splits, record_attention, record_attention_flash,
    record_attention_prefill, record_attention_split, storage_f32, AttnShape, Span, StepEncoder,
};

use super::inputs::StepInputs;
use super::step::Scratch;
use super::GpuModel;
use crate::Result;

/// The split-K threshold: `MARLIN_GPU_SPLIT_MIN_KEYS` (for A/B runs) or
/// [`ATTN_SPLIT_MIN_KEYS`](marlin_gpu::ATTN_SPLIT_MIN_KEYS).
pub(super) fn default_split_min_keys() -> usize {
    env_usize("MARLIN_GPU_SPLIT_MIN_KEYS").unwrap_or(marlin_gpu::ATTN_SPLIT_MIN_KEYS)
}

/// The MLA split-K threshold: `MARLIN_GPU_MLA_SPLIT_MIN_KEYS` (for A/B runs) or
/// [`MLA_SPLIT_MIN_KEYS`](marlin_gpu::MLA_SPLIT_MIN_KEYS).
pub(super) fn default_mla_split_min_keys() -> usize {
    env_usize("MARLIN_GPU_MLA_SPLIT_MIN_KEYS").unwrap_or(marlin_gpu::MLA_SPLIT_MIN_KEYS)
}

/// Prompt steps of one sequence with at least this many tokens run MLA attention as GEMMs
/// (`attn_mla_gemm`).
pub const MLA_GEMM_MIN_TOKENS: usize = 32;

/// The MLA GEMM threshold: `MARLIN_GPU_MLA_GEMM_MIN` (0 turns the GEMM form off) or
/// [`MLA_GEMM_MIN_TOKENS`].
pub(super) fn default_mla_gemm_min() -> usize {
    match env_usize("MARLIN_GPU_MLA_GEMM_MIN") {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => MLA_GEMM_MIN_TOKENS,
    }
}

/// Steps of at least this many tokens make MLA queries with `W_UKᵀ` folded into `q_b`.
pub const MLA_FOLD_MIN_TOKENS: usize = 32;

/// The fold threshold: `MARLIN_GPU_MLA_FOLD_MIN` (0: never) or [`MLA_FOLD_MIN_TOKENS`].
pub(super) fn default_mla_fold_min() -> usize {
    match env_usize("MARLIN_GPU_MLA_FOLD_MIN") {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => MLA_FOLD_MIN_TOKENS,
    }
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Whether prompt chunks use `attn_prefill` (`MARLIN_GPU_PREFILL_ATTN=1`). Off by default:
/// on an H200 (8B q4_0, 2659-token prompt) it took 232 ms of attention per 256-token chunk
/// against 131 ms for the per-query kernel (prefill 707 vs 1015 tok/s).
pub(super) fn prefill_attn_enabled() -> bool {
    std::env::var("MARLIN_GPU_PREFILL_ATTN").is_ok_and(|v| v == "1")
}

/// Whether prompt steps may use `attn_flash` (`MARLIN_GPU_FLASH_ATTN=0` turns it off).
pub(super) fn flash_attn_enabled() -> bool {
    std::env::var("MARLIN_GPU_FLASH_ATTN").map_or(true, |v| v != "0")
}

impl GpuModel {
    /// Splits for a layer whose queries see at most `keys` keys.
    fn splits(&self, inp: &StepInputs, keys: usize) -> usize {
        let c = &self.config;
        attn_splits(keys, inp.n, c.n_heads, self.attn_split_min_keys)
    }

    /// The model's attention over `n_tokens` query tokens with `window` and a `dtype` cache.
    pub(super) fn attn_shape(
        &self,
        n_tokens: usize,
        window: Option<usize>,
        dtype: marlin_gpu::CacheDtype,
    ) -> AttnShape {
        let c = &self.config;
        AttnShape {
            n_tokens,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            q_stride: c.q_dim(),
            scale: c.attn_scale,
            window,
            dtype,
        }
    }

    /// Make `s.part` hold the partials of the step's longest (global) attention.
    pub(super) fn fit_attn_part(&self, s: &mut Scratch, inp: &StepInputs) -> Result<()> {
        let splits = self.splits(inp, inp.max_keys);
        if splits <= 1 {
            return Ok(());
        }
        let shape = self.attn_shape(inp.n, None, marlin_gpu::CacheDtype::F32);
        let len = attn_partial_len(&shape, splits);
        if s.part.as_ref().is_none_or(|b| b.size() < len as u64 * 4) {
            s.part = Some(storage_f32(&self.ctx, len)?);
        }
        Ok(())
    }

    /// Record attention of `shape` (its window applied) into `s.att`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_attn(
        &self,
        enc: &mut StepEncoder<'_>,
        shape: &AttnShape,
        inp: &StepInputs,
        q: &Buffer,
        kc: &Buffer,
        vc: &Buffer,
        words: &Buffer,
        s: &Scratch,
    ) -> Result<()> {
        // Steps mostly of prompt tokens run the tensor-core kernel (a decode token there
        // costs a 64-query block of its own, so decode-heavy steps keep attn_paged).
        let prompt_heavy = inp.n_blocks < inp.n && 2 * inp.prompt_tokens >= inp.n;
        if prompt_heavy && self.flash_attn && attn_flash_supported(enc, shape) {
            let meta = Span::new(words, inp.meta_off);
            let blocks = Span::new(words, inp.flash_blocks_off);
            let (att, nb) = (Span::whole(&s.att), inp.n_flash_blocks);
            record_attention_flash(enc, shape, q, kc, vc, meta, blocks, nb, att)?;
            return Ok(());
        }
        if inp.n_blocks < inp.n && self.prefill_attn {
            // Prompt chunks: query blocks share K/V tiles (flash-style).
            let meta = Span::new(words, inp.meta_off);
            let blocks = Span::new(words, inp.blocks_off);
            let att = Span::whole(&s.att);
            record_attention_prefill(enc, shape, q, kc, vc, meta, blocks, inp.n_blocks, att)?;
            return Ok(());
        }
        let keys = shape.window.map_or(inp.max_keys, |w| w.min(inp.max_keys));
        let splits = self.splits(inp, keys);
        let (q, meta, att) = (
            Span::whole(q),
            Span::new(words, inp.meta_off),
            Span::whole(&s.att),
        );
        match &s.part {
            Some(part) if splits > 1 => {
                record_attention_split(enc, shape, splits, keys, q, kc, vc, meta, part, att)?
            }
            _ => record_attention(enc, shape, q, kc, vc, meta, att)?,
        }
        Ok(())
    }
}
