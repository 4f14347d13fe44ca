//! `config.json` of a Hugging Face model, typed, with the raw JSON kept alongside.
//!
//! Keys that some models lack are `Option` or `#[serde(default)]`; the four sizes every
//! decoder needs are checked after parsing. Multimodal configs are read through their
//! `text_config` (top-level keys fill what it lacks).

use serde::Deserialize;
use serde_json::Value;

use super::json::check_no_duplicate_keys;
use crate::{Error, Result};

/// A token id or a list of them (`eos_token_id` is either in the wild).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    /// All ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(v) => v.clone(),
        }
    }
}

/// The typed fields of `config.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HfConfig {
    pub architectures: Vec<String>,
    pub model_type: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    pub max_position_embeddings: Option<usize>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<Value>,
    pub tie_word_embeddings: Option<bool>,
    pub torch_dtype: Option<String>,
    pub hidden_act: Option<String>,
    pub hidden_activation: Option<String>,
    pub attention_bias: Option<bool>,
    pub sliding_window: Option<usize>,
    pub bos_token_id: Option<TokenIds>,
    pub eos_token_id: Option<TokenIds>,
    pub pad_token_id: Option<TokenIds>,
    /// Routed experts (`num_experts` in Qwen-MoE, `n_routed_experts` in DeepSeek/GLM).
    #[serde(alias = "n_routed_experts")]
    pub num_experts: Option<usize>,
    pub num_experts_per_tok: Option<usize>,
    pub moe_intermediate_size: Option<usize>,
    pub n_shared_experts: Option<usize>,
    pub first_k_dense_replace: Option<usize>,
    pub routed_scaling_factor: Option<f64>,
    pub norm_topk_prob: Option<bool>,
    pub n_group: Option<usize>,
    pub topk_group: Option<usize>,
    pub q_lora_rank: Option<usize>,
    pub kv_lora_rank: Option<usize>,
    pub qk_nope_head_dim: Option<usize>,
    pub qk_rope_head_dim: Option<usize>,
    pub v_head_dim: Option<usize>,
    pub quantization_config: Option<Value>,
    /// The whole file as parsed (the top level, not only `text_config`).
    #[serde(skip)]
    pub raw: Value,
}

const REQUIRED: [&str; 4] = [
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
];

impl HfConfig {
    /// Parse the text of a `config.json`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("config.json: {m}"));
        check_no_duplicate_keys(text).map_err(bad)?;
        let raw: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let Value::Object(top) = &raw else {
            return Err(bad("the top level is not an object".into()));
        };
        let mut src = top.clone();
        if let Some(Value::Object(text_cfg)) = top.get("text_config") {
            if !top.contains_key("hidden_size") {
                src = text_cfg.clone();
                for (k, v) in top {
                    if k != "text_config" && !src.contains_key(k) {
                        src.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        for key in REQUIRED {
            match src.get(key) {
                Some(v) if v.as_u64().is_some_and(|n| n > 0) => {}
                Some(v) => return Err(bad(format!("`{key}` must be a positive integer, got {v}"))),
                None => return Err(bad(format!("missing `{key}`"))),
            }
        }
        let mut cfg: HfConfig =
            serde_json::from_value(Value::Object(src)).map_err(|e| bad(e.to_string()))?;
        cfg.raw = raw;
        Ok(cfg)
    }

    /// `architectures[0]`, else `model_type`.
    pub fn architecture(&self) -> &str {
        self.architectures
            .first()
            .map_or(self.model_type.as_str(), String::as_str)
    }

    /// KV heads, defaulting to the attention head count.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Head dimension, defaulting to hidden_size / heads.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
}
