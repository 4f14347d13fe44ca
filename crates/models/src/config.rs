//! `ModelConfig`: the hyper-parameters of a decoder-only transformer, whatever file it came from.

use marlin_core::rope::RopeConfig;

pub use crate::blocks::config::{MlaConfig, MoeConfig, Scoring};

/// Architectures the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, SmolLM2, Mistral (GGUF arch `llama`).
    Llama,
    /// Qwen2 / Qwen2.5: Llama with q/k/v biases, NEOX rope.
    Qwen2,
    /// Qwen3: Llama with per-head q/k RMSNorm, NEOX rope.
    Qwen3,
    /// Gemma 3: sandwich norms, GeGLU, embedding scale, local/global attention layers.
    Gemma3,
    /// MLA attention + MoE MLP: GLM-4.7-Flash (`glm4_moe_lite`), DeepSeek-V2/V3 (GGUF
    /// `deepseek2`).
    Deepseek2,
    /// Qwen3-MoE: Qwen3 attention, softmax-routed experts (GGUF `qwen3moe`).
    Qwen3Moe,
}

impl Arch {
    /// The GGUF `general.architecture` name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
            Arch::Deepseek2 => "deepseek2",
            Arch::Qwen3Moe => "qwen3moe",
        }
    }

    /// Parse a GGUF `general.architecture` name.
    pub fn from_gguf_name(name: &str) -> Option<Self> {
        match name {
            "llama" | "mistral" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            "gemma3" => Some(Arch::Gemma3),
            "deepseek2" => Some(Arch::Deepseek2),
            "qwen3moe" => Some(Arch::Qwen3Moe),
            _ => None,
        }
    }
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: silu(gate) · up.
    Silu,
    /// GeGLU with the tanh approximation of GELU.
    GeluTanh,
}

/// Hyper-parameters of a decoder-only transformer.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub arch: Arch,
    pub hidden: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub rms_eps: f32,
    pub context_length: usize,
    /// RoPE of global-attention layers (all layers for Llama).
    pub rope: RopeConfig,
    /// RoPE of sliding-window layers, where they differ (Gemma 3).
    pub rope_local: Option<RopeConfig>,
    /// Sliding-window size of local layers.
    pub sliding_window: Option<usize>,
    /// Per layer: true when the layer uses the sliding window.
    pub local_layers: Vec<bool>,
    /// Softmax scale of attention scores.
    pub attn_scale: f32,
    /// Factor applied to embeddings after lookup (√hidden for Gemma).
    pub embed_scale: f32,
    pub activation: Activation,
    /// Per-head RMSNorm of q and k (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Biases on q/k/v projections (Qwen2).
    pub qkv_bias: bool,
    /// Norms after attention and after the MLP, before the residual add (Gemma 3).
    pub sandwich_norms: bool,
    /// Multi-head latent attention (Deepseek2 family); `None` for ordinary attention.
    pub mla: Option<MlaConfig>,
    /// Mixture-of-experts MLP layers; `None` for dense models.
    pub moe: Option<MoeConfig>,
}

impl ModelConfig {
    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Check the values are consistent (counts non-zero, heads divide evenly).
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if self.hidden == 0 || self.n_layers == 0 || self.n_heads == 0 || self.head_dim == 0 {
            return bad(format!("zero-sized model: {self:?}"));
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(format!(
                "{} query heads do not divide into {} kv heads",
                self.n_heads, self.n_kv_heads
            ));
        }
        if self.rope.n_rot > self.head_dim || !self.rope.n_rot.is_multiple_of(2) {
            return bad(format!(
                "rope dims {} invalid for head dim {}",
                self.rope.n_rot, self.head_dim
            ));
        }
        if self.local_layers.len() != self.n_layers {
            return bad("local layer flags do not match the layer count".into());
        }
        if self.vocab == 0 || self.ffn == 0 {
            return bad("vocab and ffn sizes must be non-zero".into());
        }
        crate::blocks::config::validate(self)
    }
}
