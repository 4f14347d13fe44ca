//! Transformer blocks beyond the plain Llama layer: multi-head latent attention (MLA) with a
//! latent KV cache, mixture-of-experts MLPs with a router and a shared expert, and the CPU
//! forward pass of models built from them (GLM-4.7-Flash / DeepSeek, Qwen3-MoE).

pub mod config;
mod forward;
mod gqa;
mod mla;
mod mla_expanded;
mod moe;
pub mod router;

use marlin_core::QTensor;

use crate::weights::Linear;

/// A SwiGLU MLP: `down(silu(gate x) ⊙ up x)`.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

/// Grouped-query attention weights (Qwen3-MoE), as in [`crate::weights::LayerWeights`].
#[derive(Debug, Clone)]
pub struct GqaWeights {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub o: Linear,
}

/// Multi-head latent attention weights of one layer (H heads).
#[derive(Debug, Clone)]
pub struct MlaWeights {
    /// `q_a_proj` `[q_lora, d]`; `None` when queries come straight from `q_b` = `q_proj`.
    pub q_a: Option<Linear>,
    /// `q_a_layernorm` `[q_lora]`.
    pub q_a_norm: Option<Vec<f32>>,
    /// `q_b_proj` `[H·(nope+rope), q_lora]` (or `q_proj` `[H·(nope+rope), d]`).
    pub q_b: Linear,
    /// `kv_a_proj_with_mqa` `[kv_lora + rope, d]`.
    pub kv_a: Linear,
    /// `kv_a_layernorm` `[kv_lora]`.
    pub kv_a_norm: Vec<f32>,
    /// Per head W_UKᵀ `[kv_lora, nope]` (GGUF `attn_k_b`): absorbs the key up-projection into
    /// the query.
    pub k_b: Vec<QTensor>,
    /// Per head W_UK `[nope, kv_lora]`: expands cached latents into keys (prefill).
    pub k_up: Vec<QTensor>,
    /// Per head W_UV `[v, kv_lora]` (GGUF `attn_v_b`).
    pub v_b: Vec<QTensor>,
    /// `o_proj` `[d, H·v]`.
    pub o: Linear,
}

/// One routed expert (a SwiGLU MLP without biases).
#[derive(Debug, Clone)]
pub struct Expert {
    pub gate: QTensor,
    pub up: QTensor,
    pub down: QTensor,
}

/// A mixture-of-experts MLP.
#[derive(Debug, Clone)]
pub struct MoeWeights {
    /// Router `[n_experts, d]`, kept in F32 (selection is sensitive to rounding).
    pub router: QTensor,
    /// `e_score_correction_bias`: added to the scores for selection only.
    pub correction_bias: Option<Vec<f32>>,
    pub experts: Vec<Expert>,
    /// The always-on shared expert.
    pub shared: Option<Mlp>,
}

/// The attention half of a block.
#[derive(Debug, Clone)]
pub enum AttnWeights {
    Gqa(Box<GqaWeights>),
    Mla(Box<MlaWeights>),
}

/// The MLP half of a block.
#[derive(Debug, Clone)]
pub enum FfnWeights {
    Dense(Mlp),
    Moe(MoeWeights),
}

/// One block of an MLA / MoE model: pre-norm attention and pre-norm MLP with residuals.
#[derive(Debug, Clone)]
pub struct BlockWeights {
    pub attn_norm: Vec<f32>,
    pub attn: AttnWeights,
    pub ffn_norm: Vec<f32>,
    pub ffn: FfnWeights,
}

impl BlockWeights {
    /// Bytes of weights one decoded token reads in this block: every attention matrix, and
    /// for a MoE MLP the router, the shared expert and `top_k` average routed experts.
    pub fn decode_bytes(&self, top_k: usize) -> usize {
        let lin = |l: &Linear| l.weight.bytes().len();
        let t = |t: &QTensor| t.bytes().len();
        let attn = match &self.attn {
            AttnWeights::Gqa(g) => [&g.q, &g.k, &g.v, &g.o].into_iter().map(lin).sum(),
            AttnWeights::Mla(m) => {
                m.q_a.as_ref().map_or(0, lin)
                    + lin(&m.q_b)
                    + lin(&m.kv_a)
                    + lin(&m.o)
                    + m.k_b.iter().chain(&m.v_b).map(t).sum::<usize>()
            }
        };
        let mlp = |m: &Mlp| lin(&m.gate) + lin(&m.up) + lin(&m.down);
        let ffn = match &self.ffn {
            FfnWeights::Dense(m) => mlp(m),
            FfnWeights::Moe(e) => {
                let all: usize = e
                    .experts
                    .iter()
                    .map(|x| t(&x.gate) + t(&x.up) + t(&x.down))
                    .sum();
                t(&e.router)
                    + e.shared.as_ref().map_or(0, mlp)
                    + all * top_k / e.experts.len().max(1)
            }
        };
        attn + ffn
    }
}
