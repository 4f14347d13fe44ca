//! Synthetic random-weight models at real shapes (`synthetic:PRESET:FORMAT`), so GPU and CPU
//! benchmarks run without downloads: Llama-architecture configs, weights packed directly in
//! the requested format, a byte-fallback tokenizer of the preset's vocabulary size, ChatML.

mod fill;
mod moe;
mod trellis;
mod vocab;

pub use fill::{random_tensor, TARGET_RMS};
pub use moe::MlaMoePreset;

use marlin_core::rope::{RopeConfig, RopeMode};
use marlin_core::QuantFormat;

use crate::chat::ChatTemplate;
use crate::config::{Activation, Arch, ModelConfig};
use crate::weights::{LayerWeights, Linear, Weights};
use crate::{Error, Model, Result};

/// The prefix of a synthetic model spec.
pub const PREFIX: &str = "synthetic:";

/// A preset: a name and the shapes of the real model it mimics.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub hidden: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub rope_theta: f32,
    pub context_length: usize,
    /// The LM head shares the embedding table.
    pub tied: bool,
    /// MLA attention + MoE MLP dims (GLM-4.7-Flash-like presets); `None`: Llama blocks.
    pub mla_moe: Option<MlaMoePreset>,
}

/// The presets `synthetic:` accepts.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "llama3-8b",
        hidden: 4096,
        n_layers: 32,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        ffn: 14336,
        vocab: 128_256,
        rope_theta: 500_000.0,
        context_length: 8192,
        tied: false,
        mla_moe: None,
    },
    Preset {
        name: "llama3-1b",
        hidden: 2048,
        n_layers: 16,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 64,
        ffn: 8192,
        vocab: 128_256,
        rope_theta: 500_000.0,
        context_length: 8192,
        tied: true,
        mla_moe: None,
    },
    Preset {
        name: "smollm2-135m",
        hidden: 576,
        n_layers: 30,
        n_heads: 9,
        n_kv_heads: 3,
        head_dim: 64,
        ffn: 1536,
        vocab: 49_152,
        rope_theta: 100_000.0,
        context_length: 8192,
        tied: true,
        mla_moe: None,
    },
    // GLM-4.7-Flash (digest §7.3); `n_heads`/`head_dim` here are the MLA query heads and
    // nope + rope dims.
    Preset {
        name: "glm47-flash",
        hidden: 2048,
        n_layers: 47,
        n_heads: 20,
        n_kv_heads: 20,
        head_dim: 256,
        ffn: 10240,
        vocab: 154_880,
        rope_theta: 1_000_000.0,
        context_length: 202_752,
        tied: false,
        mla_moe: Some(MlaMoePreset {
            q_lora_rank: 768,
            kv_lora_rank: 512,
            qk_nope_head_dim: 192,
            qk_rope_head_dim: 64,
            v_head_dim: 256,
            n_experts: 64,
            top_k: 4,
            expert_ffn: 1536,
            n_shared: 1,
            routed_scale: 1.8,
            first_dense: 1,
        }),
    },
    // GLM-4.7-Flash's structure at toy size (tests).
    Preset {
        name: "glm47-tiny",
        hidden: 256,
        n_layers: 3,
        n_heads: 4,
        n_kv_heads: 4,
        head_dim: 96,
        ffn: 512,
        vocab: 1024,
        rope_theta: 1_000_000.0,
        context_length: 4096,
        tied: false,
        mla_moe: Some(MlaMoePreset {
            q_lora_rank: 128,
            kv_lora_rank: 64,
            qk_nope_head_dim: 64,
            qk_rope_head_dim: 32,
            v_head_dim: 64,
            n_experts: 8,
            top_k: 2,
            expert_ffn: 256,
            n_shared: 1,
            routed_scale: 1.8,
            first_dense: 1,
        }),
    },
];

impl Preset {
    /// The preset called `name`.
    pub fn by_name(name: &str) -> Option<&'static Preset> {
        PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The model config of this preset (Llama, GGUF-style adjacent-pair RoPE; MLA + MoE for
    /// presets with [`MlaMoePreset`] dims).
    pub fn config(&self) -> ModelConfig {
        let mut cfg = ModelConfig {
            arch: Arch::Llama,
            hidden: self.hidden,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            ffn: self.ffn,
            vocab: self.vocab,
            rms_eps: 1e-5,
            context_length: self.context_length,
            rope: RopeConfig::new(self.head_dim, self.rope_theta, RopeMode::Normal),
            rope_local: None,
            sliding_window: None,
            local_layers: vec![false; self.n_layers],
            attn_scale: 1.0 / (self.head_dim as f32).sqrt(),
            embed_scale: 1.0,
            activation: Activation::Silu,
            qk_norm: false,
            qkv_bias: false,
            sandwich_norms: false,
            mla: None,
            moe: None,
        };
        if let Some(p) = &self.mla_moe {
            moe::configure(&mut cfg, p);
        }
        cfg
    }
}

/// A parsed `PRESET:FORMAT` spec.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticSpec {
    pub preset: &'static Preset,
    pub format: QuantFormat,
}

impl SyntheticSpec {
    /// Parse `synthetic:PRESET:FORMAT` (the prefix is optional).
    pub fn parse(spec: &str) -> Result<Self> {
        let body = spec.strip_prefix(PREFIX).unwrap_or(spec);
        let presets = || {
            PRESETS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((preset, format)) = body.split_once(':') else {
            return Err(Error::Config(format!(
                "synthetic model `{spec}` needs the form synthetic:PRESET:FORMAT \
                 (presets: {}; formats: q4_0, q4_k, q8_0, f16, …)",
                presets()
            )));
        };
        let preset = Preset::by_name(preset).ok_or_else(|| {
            Error::Config(format!(
                "unknown synthetic preset `{preset}` (presets: {})",
                presets()
            ))
        })?;
        let format = format_by_name(format).ok_or_else(|| {
            Error::Config(format!(
                "unknown weight format `{format}` (GGML types such as q4_0, q4_k, q8_0, f16; \
                 metal-marlin formats such as fp4 (= fp4_g128), mxfp4, nvfp4, int4 \
                 (= int4_g128), int8, fp8, trellis3)"
            ))
        })?;
        Ok(Self { preset, format })
    }

    /// The model name, `synthetic:PRESET:FORMAT`.
    pub fn name(&self) -> String {
        format!("{PREFIX}{}:{}", self.preset.name, self.format)
    }
}

/// A format by its name, where a bare `fp4`/`intN` means group 128 (the issues' and the
/// quantizer's default), so `synthetic:llama3-8b:fp4` works as written.
fn format_by_name(name: &str) -> Option<QuantFormat> {
    QuantFormat::from_name(name).or_else(|| {
        let bare = ["fp4", "int8", "int4", "int3", "int2"];
        bare.contains(&name)
            .then(|| QuantFormat::from_name(&format!("{name}_g128")))
            .flatten()
    })
}

/// The format a `[_, cols]` weight gets: `format`, or llama.cpp's usual fallback when `cols`
/// is not a whole number of its blocks (K-quants on 576-wide SmolLM2), else F16.
/// Trellis needs `cols` (and rows) to be multiples of 16, else F16.
pub fn format_for(format: QuantFormat, cols: usize) -> QuantFormat {
    use QuantFormat as F;
    let fits = |f: QuantFormat| match f {
        F::Trellis(_) => cols.is_multiple_of(16),
        _ => cols.is_multiple_of(f.block_elems()),
    };
    if fits(format) {
        return format;
    }
    let fallback = match format {
        F::Q2_K | F::Q3_K => F::Q4_0,
        F::Q4_K => F::Q5_0,
        F::Q5_K => F::Q5_1,
        F::Q6_K | F::Q8_K => F::Q8_0,
        F::IQ4_XS => F::IQ4_NL,
        _ => F::F16,
    };
    if fits(fallback) {
        fallback
    } else {
        F::F16
    }
}

fn linear(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> Result<Linear> {
    Ok(Linear {
        weight: random_tensor(format_for(format, cols), rows, cols, seed)?,
        bias: None,
    })
}

fn layer(cfg: &ModelConfig, format: QuantFormat, l: usize) -> Result<LayerWeights> {
    let (d, q, kv, f) = (cfg.hidden, cfg.q_dim(), cfg.kv_dim(), cfg.ffn);
    let seed = |i: u64| fill::mix(((l as u64 + 1) << 8) | i);
    Ok(LayerWeights {
        attn_norm: vec![1.0; d],
        q: linear(format, q, d, seed(0))?,
        k: linear(format, kv, d, seed(1))?,
        v: linear(format, kv, d, seed(2))?,
        q_norm: None,
        k_norm: None,
        o: linear(format, d, q, seed(3))?,
        post_attn_norm: None,
        ffn_norm: vec![1.0; d],
        gate: linear(format, f, d, seed(4))?,
        up: linear(format, f, d, seed(5))?,
        down: linear(format, d, f, seed(6))?,
        post_ffn_norm: None,
    })
}

/// The format of a weight read by rows (token embeddings, MLA's sliced `kv_b`): `format`,
/// or Q8_0 for trellis (whose tiles span 16 rows).
pub fn row_format(format: QuantFormat) -> QuantFormat {
    if format.is_trellis() {
        QuantFormat::Q8_0
    } else {
        format
    }
}

/// Build the model a `synthetic:PRESET:FORMAT` spec names; `progress(done, total)` counts
/// the embedding table, every layer and the LM head.
pub fn build(spec: &str, progress: &mut dyn FnMut(usize, usize)) -> Result<Model> {
    let s = SyntheticSpec::parse(spec)?;
    build_preset(s.preset, s.format, progress)
}

/// Build the random-weight model of `preset` (any [`Preset`] value, e.g. a listed one with
/// fewer layers) with weights in `format`.
pub fn build_preset(
    preset: &Preset,
    format: QuantFormat,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Model> {
    let cfg = preset.config();
    let total = cfg.n_layers + 2;
    progress(0, total);
    let emb_format = format_for(row_format(format), cfg.hidden);
    let embed = random_tensor(emb_format, cfg.vocab, cfg.hidden, fill::mix(1))?;
    progress(1, total);
    let mut layers = Vec::with_capacity(cfg.n_layers);
    let mut blocks = Vec::new();
    if cfg.mla.is_some() {
        blocks = moe::blocks(&cfg, format, &mut |l| progress(l + 1, total))?;
    } else {
        for l in 0..cfg.n_layers {
            layers.push(layer(&cfg, format, l)?);
            progress(l + 2, total);
        }
    }
    let lm_head = if preset.tied {
        embed.clone()
    } else {
        random_tensor(emb_format, cfg.vocab, cfg.hidden, fill::mix(2))?
    };
    progress(total, total);
    let weights = Weights {
        embed,
        layers,
        output_norm: vec![1.0; cfg.hidden],
        lm_head,
        blocks,
    };
    let tokenizer = vocab::tokenizer(cfg.vocab)?;
    let name = format!("{PREFIX}{}:{format}", preset.name);
    Model::assemble(cfg, weights, tokenizer, ChatTemplate::chatml()?, name)
}
