//! The tuning switches of a [`GpuModel`]: builders for A/B runs, tests and devices whose
//! best settings differ from the H200's (each also has a `MARLIN_GPU_*` variable).

use super::GpuModel;

impl GpuModel {
    /// Use split-K attention from `keys` keys on, GQA and MLA alike (defaults
    /// [`ATTN_SPLIT_MIN_KEYS`](marlin_gpu::ATTN_SPLIT_MIN_KEYS) and
    /// [`MLA_SPLIT_MIN_KEYS`](marlin_gpu::MLA_SPLIT_MIN_KEYS)); `usize::MAX` turns it off.
    pub fn with_attn_split_min_keys(mut self, keys: usize) -> Self {
        self.attn_split_min_keys = keys;
        self.mla_split_min_keys = keys;
        self
    }

    /// One-sequence steps of at least `n` tokens run MLA attention as GEMMs
    /// (`attn_mla_gemm`; default [`MLA_GEMM_MIN_TOKENS`](super::attn::MLA_GEMM_MIN_TOKENS),
    /// or `MARLIN_GPU_MLA_GEMM_MIN`); `usize::MAX` keeps the `attn_mla` kernel.
    pub fn with_mla_gemm_min(mut self, n: usize) -> Self {
        self.mla_gemm_min = n.max(1);
        self
    }

    /// Steps of at least `n` tokens make MLA queries with `W_UKᵀ` folded into `q_b` (default
    /// [`MLA_FOLD_MIN_TOKENS`](super::attn::MLA_FOLD_MIN_TOKENS), or
    /// `MARLIN_GPU_MLA_FOLD_MIN`); `usize::MAX` never.
    pub fn with_mla_fold_min(mut self, n: usize) -> Self {
        self.mla_fold_min = n.max(1);
        self
    }

    /// Fold RoPE and the f16 KV-cache write into the q|k|v GEMV of fused decode steps
    /// (`gemv_norm_rope_kv`; default on, `MARLIN_GPU_ROPE_GEMV=0` off).
    pub fn with_rope_in_gemv(mut self, on: bool) -> Self {
        self.rope_gemv = on;
        self
    }

    /// Fold SwiGLU into the gate|up GEMV of fused decode steps (`gemv_norm_swiglu`; default
    /// on, `MARLIN_GPU_SWIGLU_GEMV=0` off).
    pub fn with_swiglu_in_gemv(mut self, on: bool) -> Self {
        self.swiglu_gemv = on;
        self
    }

    /// Use the flash-style prefill attention for prompt chunks (default: off, or
    /// `MARLIN_GPU_PREFILL_ATTN=1`; slower than the per-query kernel on an H200 so far).
    pub fn with_prefill_attention(mut self, on: bool) -> Self {
        self.prefill_attn = on;
        self
    }

    /// Fold each MoE MLP's norm into its router and gate|up GEMVs in fused decode steps
    /// (`moe_gemv_norm`; off by default, `MARLIN_GPU_MOE_FOLD_NORM=1`).
    pub fn with_moe_fold_norm(mut self, on: bool) -> Self {
        self.moe_fold_norm = on;
        self
    }

    /// Steps of at least `n` tokens run MoE experts grouped by expert (`moe_gemv_multi`;
    /// by default from [`MOE_GROUPED_MIN_TOKENS`](super::MOE_GROUPED_MIN_TOKENS) tokens, or `MARLIN_GPU_MOE_GROUPED_MIN`).
    pub fn with_moe_grouped_min(mut self, n: usize) -> Self {
        self.moe_grouped_min = n.max(1);
        self
    }

    /// Whether prompt steps run attention on cooperative matrices (`attn_flash`, default on
    /// where the device has them; `MARLIN_GPU_FLASH_ATTN=0` turns it off).
    pub fn with_flash_attention(mut self, on: bool) -> Self {
        self.flash_attn = on;
        self
    }

    /// Cap logits buffers at `bytes` (at least one row each; the device limit still
    /// applies). Steps wanting more rows split the LM head over several buffers.
    pub fn with_logits_page_bytes(mut self, bytes: u64) -> Self {
        self.logits_page_bytes = bytes.min(self.ctx.max_binding());
        self
    }
}
