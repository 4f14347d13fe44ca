//! Reading a model's config from a Hugging Face `config.json` (transformers 4.x and 5.x
//! spellings: `rope_theta`/`rope_scaling` or `rope_parameters`).

use marlin_core::rope::{RopeConfig, RopeMode, RopeScaling};
use serde_json::Value;

use crate::config::{Activation, Arch, ModelConfig};
use crate::{Error, Result};

fn arch_of(v: &Value) -> Result<Arch> {
    let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
    match model_type {
        "llama" | "mistral" => Ok(Arch::Llama),
        "qwen2" => Ok(Arch::Qwen2),
        "qwen3" => Ok(Arch::Qwen3),
        "gemma3_text" | "gemma3" => Ok(Arch::Gemma3),
        "glm4_moe_lite" | "deepseek_v3" | "deepseek_v2" => Ok(Arch::Deepseek2),
        "qwen3_moe" => Ok(Arch::Qwen3Moe),
        other => Err(Error::Unsupported(format!(
            "model_type `{other}` (supported: llama, mistral, qwen2, qwen3, gemma3_text, \
             glm4_moe_lite, deepseek_v3, deepseek_v2, qwen3_moe)"
        ))),
    }
}

pub(super) fn req(v: &Value, key: &str) -> Result<usize> {
    opt(v, key)?.ok_or_else(|| Error::Config(format!("config.json: missing `{key}`")))
}

pub(super) fn opt(v: &Value, key: &str) -> Result<Option<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::Config(format!("config.json: `{key}` must be a count, got {x}"))),
    }
}

pub(super) fn num(v: &Value, key: &str) -> Option<f32> {
    v.get(key).and_then(Value::as_f64).map(|x| x as f32)
}

/// RoPE from a rope-parameters object (`rope_scaling`, `rope_parameters` or one of its
/// per-layer-type entries), with `default_theta` when it names none.
fn rope_from(p: Option<&Value>, default_theta: f32, n_rot: usize) -> Result<RopeConfig> {
    let theta = p
        .and_then(|p| num(p, "rope_theta"))
        .unwrap_or(default_theta);
    let mut rope = RopeConfig::new(n_rot, theta, RopeMode::Neox);
    let Some(p) = p else { return Ok(rope) };
    let kind = p
        .get("rope_type")
        .or_else(|| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let factor = num(p, "factor").unwrap_or(1.0);
    rope.scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor },
        "llama3" => RopeScaling::Llama3 {
            factor,
            low_freq_factor: num(p, "low_freq_factor").unwrap_or(1.0),
            high_freq_factor: num(p, "high_freq_factor").unwrap_or(4.0),
            original_context: opt(p, "original_max_position_embeddings")?.unwrap_or(8192),
        },
        other => return Err(Error::Unsupported(format!("rope type `{other}`"))),
    };
    Ok(rope)
}

/// The model config from a parsed `config.json`.
pub fn config_from_hf(v: &Value) -> Result<ModelConfig> {
    let arch = arch_of(v)?;
    let hidden = req(v, "hidden_size")?;
    let n_layers = req(v, "num_hidden_layers")?;
    let n_heads = req(v, "num_attention_heads")?;
    let n_kv_heads = opt(v, "num_key_value_heads")?.unwrap_or(n_heads);
    let head_dim = match opt(v, "head_dim")? {
        Some(h) => h,
        None if arch == Arch::Deepseek2 => {
            req(v, "qk_nope_head_dim")? + req(v, "qk_rope_head_dim")?
        }
        None if hidden % n_heads.max(1) == 0 => hidden / n_heads.max(1),
        None => return Err(Error::Config("cannot derive head_dim".into())),
    };
    let theta = num(v, "rope_theta").unwrap_or(10_000.0);
    let params = v.get("rope_parameters").filter(|p| p.is_object());
    let legacy_scaling = v.get("rope_scaling").filter(|p| p.is_object());
    let gemma = arch == Arch::Gemma3;
    let rope = if gemma {
        let p = params
            .and_then(|p| p.get("full_attention"))
            .or(legacy_scaling);
        rope_from(p, theta, head_dim)?
    } else {
        rope_from(params.or(legacy_scaling), theta, head_dim)?
    };
    let mut cfg = ModelConfig {
        arch,
        hidden,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn: req(v, "intermediate_size")?,
        vocab: req(v, "vocab_size")?,
        rms_eps: num(v, "rms_norm_eps").unwrap_or(1e-6),
        context_length: opt(v, "max_position_embeddings")?.unwrap_or(4096),
        rope,
        rope_local: None,
        sliding_window: None,
        local_layers: vec![false; n_layers],
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        embed_scale: 1.0,
        activation: Activation::Silu,
        qk_norm: arch == Arch::Qwen3,
        qkv_bias: arch == Arch::Qwen2
            || v.get("attention_bias").and_then(Value::as_bool) == Some(true),
        sandwich_norms: false,
        mla: None,
        moe: None,
    };
    // Mistral slides every layer when it names a window (Qwen only with use_sliding_window).
    let model_type = v.get("model_type").and_then(Value::as_str);
    if model_type == Some("mistral") {
        if let Some(w) = opt(v, "sliding_window")? {
            cfg.sliding_window = Some(w);
            cfg.local_layers = vec![true; n_layers];
        }
    }
    if gemma {
        let local_theta = num(v, "rope_local_base_freq").unwrap_or(10_000.0);
        let p = params.and_then(|p| p.get("sliding_attention"));
        cfg.rope_local = Some(rope_from(p, local_theta, head_dim)?);
        cfg.sliding_window = opt(v, "sliding_window")?;
        cfg.local_layers = gemma_layer_types(v, n_layers)?;
        let scalar = num(v, "query_pre_attn_scalar").unwrap_or(head_dim as f32);
        cfg.attn_scale = scalar.powf(-0.5);
        cfg.embed_scale = (hidden as f32).sqrt();
        cfg.activation = Activation::GeluTanh;
        cfg.qk_norm = true;
        cfg.sandwich_norms = true;
        for key in ["final_logit_softcapping", "attn_logit_softcapping"] {
            if v.get(key).is_some_and(|x| !x.is_null()) {
                return Err(Error::Unsupported(format!("gemma3 with `{key}`")));
            }
        }
    }
    super::hf_moe::apply(v, &mut cfg)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Which Gemma 3 layers slide: `layer_types` if given, else every `pattern`-th is global.
fn gemma_layer_types(v: &Value, n_layers: usize) -> Result<Vec<bool>> {
    if let Some(types) = v.get("layer_types").and_then(Value::as_array) {
        if types.len() != n_layers {
            return Err(Error::Config(format!(
                "layer_types has {} entries for {n_layers} layers",
                types.len()
            )));
        }
        return types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                _ => Err(Error::Config(format!("unknown layer type {t}"))),
            })
            .collect();
    }
    let pattern = opt(v, "sliding_window_pattern")?
        .or(opt(v, "_sliding_window_pattern")?)
        .unwrap_or(6)
        .max(1);
    Ok((0..n_layers).map(|l| (l + 1) % pattern != 0).collect())
}
