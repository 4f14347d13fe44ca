//! The MLA and MoE parts of a Hugging Face `config.json`: `glm4_moe_lite`, `deepseek_v3`,
//! `deepseek_v2` (MLA + MoE) and `qwen3_moe` (Qwen3 attention + MoE).

use marlin_core::rope::RopeMode;
use serde_json::Value;

use super::hf_config::{num, opt, req};
use crate::blocks::config::{MlaConfig, MoeConfig, Scoring, DEFAULT_EXPANDED_MIN_TOKENS};
use crate::config::{Arch, ModelConfig};
use crate::{Error, Result};

/// Epsilon transformers gives the `q_a`/`kv_a` layernorms (not `rms_norm_eps`).
const LORA_NORM_EPS: f32 = 1e-6;

/// Fill in `cfg`'s MLA / MoE fields for the architectures that have them.
pub(crate) fn apply(v: &Value, cfg: &mut ModelConfig) -> Result<()> {
    match cfg.arch {
        Arch::Deepseek2 => deepseek(v, cfg),
        Arch::Qwen3Moe => qwen3_moe(v, cfg),
        _ => Ok(()),
    }
}

fn flag(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn deepseek(v: &Value, cfg: &mut ModelConfig) -> Result<()> {
    let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
    let v2 = model_type == "deepseek_v2";
    let mla = MlaConfig {
        q_lora_rank: opt(v, "q_lora_rank")?,
        kv_lora_rank: req(v, "kv_lora_rank")?,
        qk_nope_head_dim: req(v, "qk_nope_head_dim")?,
        qk_rope_head_dim: req(v, "qk_rope_head_dim")?,
        v_head_dim: req(v, "v_head_dim")?,
        lora_norm_eps: LORA_NORM_EPS,
        expanded_min_tokens: DEFAULT_EXPANDED_MIN_TOKENS,
    };
    cfg.head_dim = mla.qk_head_dim();
    cfg.n_kv_heads = cfg.n_heads;
    cfg.rope.n_rot = mla.qk_rope_head_dim;
    // DeepSeek checkpoints store the rope dims as adjacent pairs (`rope_interleave`).
    cfg.rope.mode = if flag(v, "rope_interleave", true) {
        RopeMode::Normal
    } else {
        RopeMode::Neox
    };
    cfg.attn_scale = (mla.qk_head_dim() as f32).powf(-0.5);
    cfg.qk_norm = false;
    cfg.mla = Some(mla);

    if v2 && v.get("topk_method").and_then(Value::as_str) == Some("group_limited_greedy") {
        return Err(Error::Unsupported(
            "deepseek_v2 group_limited_greedy routing".into(),
        ));
    }
    let scoring = match v.get("scoring_func").and_then(Value::as_str) {
        Some("softmax") => Scoring::Softmax,
        Some("sigmoid") => Scoring::Sigmoid,
        Some(other) => return Err(Error::Unsupported(format!("scoring_func `{other}`"))),
        None if v2 => Scoring::Softmax,
        None => Scoring::Sigmoid,
    };
    let n_layers = cfg.n_layers;
    let sparse_layers = match v.get("mlp_layer_types").and_then(Value::as_array) {
        Some(types) => {
            if types.len() != n_layers {
                return Err(Error::Config(format!(
                    "mlp_layer_types has {} entries for {n_layers} layers",
                    types.len()
                )));
            }
            types
                .iter()
                .map(|t| match t.as_str() {
                    Some("sparse") => Ok(true),
                    Some("dense") => Ok(false),
                    _ => Err(Error::Config(format!("unknown mlp layer type {t}"))),
                })
                .collect::<Result<Vec<_>>>()?
        }
        None => {
            let first_dense = opt(v, "first_k_dense_replace")?.unwrap_or(0);
            let freq = opt(v, "moe_layer_freq")?.unwrap_or(1).max(1);
            (0..n_layers)
                .map(|l| l >= first_dense && l % freq == 0)
                .collect()
        }
    };
    let expert_ffn = req(v, "moe_intermediate_size")?;
    let n_shared = opt(v, "n_shared_experts")?.unwrap_or(0);
    cfg.moe = Some(MoeConfig {
        n_experts: req(v, "n_routed_experts")?,
        top_k: req(v, "num_experts_per_tok")?,
        expert_ffn,
        shared_ffn: expert_ffn * n_shared,
        scoring,
        norm_topk_prob: flag(v, "norm_topk_prob", !v2),
        routed_scale: num(v, "routed_scaling_factor").unwrap_or(1.0),
        n_group: opt(v, "n_group")?.unwrap_or(1),
        topk_group: opt(v, "topk_group")?.unwrap_or(1),
        sparse_layers,
    });
    Ok(())
}

fn qwen3_moe(v: &Value, cfg: &mut ModelConfig) -> Result<()> {
    cfg.qk_norm = true;
    let n_experts = opt(v, "num_experts")?.unwrap_or(0);
    let step = opt(v, "decoder_sparse_step")?.unwrap_or(1).max(1);
    let dense: Vec<usize> = match v.get("mlp_only_layers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| Error::Config(format!("mlp_only_layers entry {x}")))
            })
            .collect::<Result<_>>()?,
        Some(x) => {
            return Err(Error::Config(format!(
                "mlp_only_layers must be a list, got {x}"
            )))
        }
    };
    let sparse_layers = (0..cfg.n_layers)
        .map(|l| !dense.contains(&l) && n_experts > 0 && (l + 1) % step == 0)
        .collect();
    cfg.moe = Some(MoeConfig {
        n_experts,
        top_k: req(v, "num_experts_per_tok")?,
        expert_ffn: req(v, "moe_intermediate_size")?,
        shared_ffn: 0,
        scoring: Scoring::Softmax,
        norm_topk_prob: flag(v, "norm_topk_prob", false),
        routed_scale: 1.0,
        n_group: 1,
        topk_group: 1,
        sparse_layers,
    });
    Ok(())
}
