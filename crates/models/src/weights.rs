//! The weights of a decoder-only transformer, in whatever format the file stored them.

use marlin_core::QTensor;

/// One linear layer: a weight `[out, in]` and an optional bias.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: QTensor,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.rows()
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.cols()
    }
}

/// The weights of one transformer block.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub o: Linear,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// All weights of a model.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Token embeddings `[vocab, hidden]`.
    pub embed: QTensor,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// The LM head `[vocab, hidden]`; the embedding table when embeddings are tied.
    pub lm_head: QTensor,
    /// Blocks of MLA / MoE architectures ([`crate::config::Arch::Deepseek2`],
    /// [`crate::config::Arch::Qwen3Moe`]); empty for the others, whose blocks are `layers`.
    pub blocks: Vec<crate::blocks::BlockWeights>,
}
