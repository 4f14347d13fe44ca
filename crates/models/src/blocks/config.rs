//! Hyper-parameters of multi-head latent attention (MLA) and mixture-of-experts (MoE) blocks
//! (GLM-4.7-Flash / DeepSeek-V2/V3, Qwen3-MoE).

use crate::config::ModelConfig;
use crate::{Error, Result};

/// Prefill chunks of at least this many tokens use the expanded MLA form by default.
pub const DEFAULT_EXPANDED_MIN_TOKENS: usize = 256;

/// Multi-head latent attention dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct MlaConfig {
    /// Rank of the query compression (`None`: one `q_proj` straight from the hidden state).
    pub q_lora_rank: Option<usize>,
    /// Rank of the compressed key/value latent `c_kv` (512 for GLM-4.7-Flash).
    pub kv_lora_rank: usize,
    /// Per-head query/key dims without position (192).
    pub qk_nope_head_dim: usize,
    /// Per-head query/key dims with RoPE, the key part shared by all heads (64).
    pub qk_rope_head_dim: usize,
    /// Per-head value dims (256).
    pub v_head_dim: usize,
    /// Epsilon of the `q_a`/`kv_a` RMSNorms (transformers builds them with 1e-6).
    pub lora_norm_eps: f32,
    /// Chunks of at least this many query tokens attend in the expanded form (keys and values
    /// decompressed per head); shorter ones (decode) in the absorbed form over the latent.
    pub expanded_min_tokens: usize,
}

impl MlaConfig {
    /// Query/key dims per head: nope + rope.
    pub fn qk_head_dim(&self) -> usize {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }

    /// Values cached per token per layer: `kv_lora_rank + qk_rope_head_dim`.
    pub fn latent_width(&self) -> usize {
        self.kv_lora_rank + self.qk_rope_head_dim
    }
}

/// How router logits become expert scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// softmax over all experts (Qwen3-MoE, DeepSeek-V2).
    Softmax,
    /// independent sigmoids (GLM-4.7-Flash, DeepSeek-V3).
    Sigmoid,
}

/// Mixture-of-experts MLP hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeConfig {
    /// Routed experts per MoE layer.
    pub n_experts: usize,
    /// Experts picked per token.
    pub top_k: usize,
    /// Inner size of each routed expert.
    pub expert_ffn: usize,
    /// Inner size of the shared expert (0: none).
    pub shared_ffn: usize,
    pub scoring: Scoring,
    /// Renormalise the picked weights to sum to 1.
    pub norm_topk_prob: bool,
    /// Factor on the routed experts' weights (`routed_scaling_factor`).
    pub routed_scale: f32,
    /// Expert groups (group-limited routing); 1 = off.
    pub n_group: usize,
    /// Groups kept per token.
    pub topk_group: usize,
    /// Per layer: true for a MoE layer, false for a dense MLP of `ModelConfig::ffn`.
    pub sparse_layers: Vec<bool>,
}

impl MoeConfig {
    /// Whether layer `l` is a MoE layer.
    pub fn is_sparse(&self, l: usize) -> bool {
        self.sparse_layers.get(l).copied().unwrap_or(false)
    }
}

/// Checks the MLA and MoE parts of `cfg`.
pub fn validate(cfg: &ModelConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    if let Some(m) = &cfg.mla {
        if m.kv_lora_rank == 0 || m.qk_rope_head_dim == 0 || m.v_head_dim == 0 {
            return bad(format!("zero-sized MLA dims: {m:?}"));
        }
        if m.q_lora_rank == Some(0) || !m.qk_rope_head_dim.is_multiple_of(2) {
            return bad(format!("invalid MLA dims: {m:?}"));
        }
        if cfg.rope.n_rot != m.qk_rope_head_dim || cfg.head_dim != m.qk_head_dim() {
            return bad(format!(
                "MLA rope dims {} / head dim {} disagree with {m:?}",
                cfg.rope.n_rot, cfg.head_dim
            ));
        }
    }
    if let Some(e) = &cfg.moe {
        if e.n_experts == 0 || e.top_k == 0 || e.top_k > e.n_experts || e.expert_ffn == 0 {
            return bad(format!(
                "MoE needs 1 ≤ top_k ({}) ≤ experts ({}) and a non-zero expert size",
                e.top_k, e.n_experts
            ));
        }
        if e.n_group == 0 || !e.n_experts.is_multiple_of(e.n_group) {
            return bad(format!(
                "{} experts do not split into {} groups",
                e.n_experts, e.n_group
            ));
        }
        if e.topk_group == 0 || e.topk_group > e.n_group {
            return bad(format!(
                "topk_group {} invalid for {} groups",
                e.topk_group, e.n_group
            ));
        }
        let kept = e.topk_group * (e.n_experts / e.n_group);
        if kept < e.top_k {
            return bad(format!(
                "{kept} experts in the kept groups < top_k {}",
                e.top_k
            ));
        }
        if e.sparse_layers.len() != cfg.n_layers {
            return bad("MoE layer flags do not match the layer count".into());
        }
        if !e.routed_scale.is_finite() {
            return bad("routed_scaling_factor must be finite".into());
        }
    }
    Ok(())
}
