//! A loaded [`Model`] seen as a Hugging Face folder: every tensor under its HF name (in the
//! HF conventions: llama.cpp's rotary row permutation of Q/K undone, Gemma norms stored as
//! offsets from 1), plus `config.json` and tokenizer files.

use std::path::Path;

use marlin_core::rope::{RopeMode, RopeScaling};
use marlin_core::QTensor;
use marlin_models::config::{Activation, Arch, ModelConfig};
use marlin_models::model::Model;
use serde_json::{json, Value};

use crate::{Error, Result};

pub use crate::role::{Proj, Role};

/// Where a tensor's values come from.
pub enum Source<'a> {
    /// A weight matrix; `unpermute` = heads whose rotary row order must be undone.
    Matrix {
        tensor: &'a QTensor,
        unpermute: Option<usize>,
    },
    /// A vector, already in HF convention.
    Vector(Vec<f32>),
    /// MLA `kv_b_proj` `[H·(nope+v), kv_lora]`, rebuilt per head from W_UK and W_UV.
    KvB {
        k_up: &'a [QTensor],
        v_b: &'a [QTensor],
    },
}

/// One tensor of the exported folder.
pub struct Entry<'a> {
    pub name: String,
    pub role: Role,
    pub layer: Option<usize>,
    pub src: Source<'a>,
}

impl Entry<'_> {
    /// `[rows, cols]` of a matrix, `[len]` of a vector.
    pub fn shape(&self) -> Vec<usize> {
        match &self.src {
            Source::Matrix { tensor, .. } => vec![tensor.rows(), tensor.cols()],
            Source::Vector(v) => vec![v.len()],
            Source::KvB { k_up, v_b } => {
                let rows = k_up.iter().chain(v_b.iter()).map(QTensor::rows).sum();
                vec![rows, k_up.first().map_or(0, QTensor::cols)]
            }
        }
    }

    /// The values as f32 in HF convention (matrices dequantized; allocates).
    pub fn values(&self) -> Result<Vec<f32>> {
        match &self.src {
            Source::Vector(v) => Ok(v.clone()),
            Source::Matrix { tensor, unpermute } => {
                let v = tensor.to_f32()?;
                Ok(match unpermute {
                    Some(heads) => unpermute_rows(&v, *heads, tensor.rows(), tensor.cols()),
                    None => v,
                })
            }
            Source::KvB { k_up, v_b } => {
                let mut out = Vec::new();
                for (k, v) in k_up.iter().zip(v_b.iter()) {
                    out.extend(k.to_f32()?);
                    out.extend(v.to_f32()?);
                }
                Ok(out)
            }
        }
    }
}

/// Undo llama.cpp's Q/K permutation: GGUF row `h·hd + 2j + s` is HF row `h·hd + s·hd/2 + j`.
fn unpermute_rows(v: &[f32], heads: usize, rows: usize, cols: usize) -> Vec<f32> {
    let hd = rows / heads.max(1);
    let mut out = vec![0f32; v.len()];
    for h in 0..heads {
        for j in 0..hd / 2 {
            for s in 0..2 {
                let src = h * hd + 2 * j + s;
                let dst = h * hd + s * hd / 2 + j;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&v[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Whether the LM head is the embedding table (tied).
pub fn tied(model: &Model) -> bool {
    let w = &model.weights;
    std::ptr::eq(w.lm_head.bytes().as_ptr(), w.embed.bytes().as_ptr())
}

/// Every tensor of `model` under its HF name, in a stable order.
pub fn entries(model: &Model) -> Result<Vec<Entry<'_>>> {
    let c = &model.config;
    if !model.weights.blocks.is_empty() {
        return crate::export_moe::entries(model);
    }
    if !matches!(
        c.arch,
        Arch::Llama | Arch::Qwen2 | Arch::Qwen3 | Arch::Gemma3
    ) {
        return Err(Error::Unsupported(format!(
            "exporting {} models (llama, qwen2, qwen3, gemma3 only)",
            c.arch.name()
        )));
    }
    // GGUF llama keeps llama.cpp's interleaved rotary rows; HF uses the half-split order.
    let permuted = c.rope.mode == RopeMode::Normal;
    if permuted && c.rope.n_rot != c.head_dim {
        return Err(Error::Unsupported(
            "partial rotary with interleaved rows".into(),
        ));
    }
    let gemma = c.arch == Arch::Gemma3;
    let norm = |v: &Vec<f32>| -> Source<'_> {
        Source::Vector(if gemma {
            v.iter().map(|x| x - 1.0).collect()
        } else {
            v.clone()
        })
    };
    let mut out = vec![Entry {
        name: "model.embed_tokens.weight".into(),
        role: Role::Embed,
        layer: None,
        src: Source::Matrix {
            tensor: &model.weights.embed,
            unpermute: None,
        },
    }];
    for (l, lw) in model.weights.layers.iter().enumerate() {
        let p = format!("model.layers.{l}.");
        let mut push = |name: String, role, src| {
            out.push(Entry {
                name: format!("{p}{name}"),
                role,
                layer: Some(l),
                src,
            })
        };
        push(
            "input_layernorm.weight".into(),
            Role::Vector,
            norm(&lw.attn_norm),
        );
        let lin = |t, heads: usize| Source::Matrix {
            tensor: t,
            unpermute: permuted.then_some(heads),
        };
        push(
            "self_attn.q_proj.weight".into(),
            Role::Q,
            lin(&lw.q.weight, c.n_heads),
        );
        push(
            "self_attn.k_proj.weight".into(),
            Role::K,
            lin(&lw.k.weight, c.n_kv_heads),
        );
        push(
            "self_attn.v_proj.weight".into(),
            Role::V,
            Source::Matrix {
                tensor: &lw.v.weight,
                unpermute: None,
            },
        );
        for (n, l) in [("q", &lw.q), ("k", &lw.k), ("v", &lw.v)] {
            if let Some(b) = &l.bias {
                push(
                    format!("self_attn.{n}_proj.bias"),
                    Role::Vector,
                    Source::Vector(b.clone()),
                );
            }
        }
        if let (Some(qn), Some(kn)) = (&lw.q_norm, &lw.k_norm) {
            push("self_attn.q_norm.weight".into(), Role::Vector, norm(qn));
            push("self_attn.k_norm.weight".into(), Role::Vector, norm(kn));
        }
        push(
            "self_attn.o_proj.weight".into(),
            Role::O,
            Source::Matrix {
                tensor: &lw.o.weight,
                unpermute: None,
            },
        );
        if gemma {
            let pa = lw
                .post_attn_norm
                .as_ref()
                .ok_or_else(|| Error::Unsupported("gemma3 without sandwich norms".into()))?;
            let pf = lw
                .post_ffn_norm
                .as_ref()
                .ok_or_else(|| Error::Unsupported("gemma3 without sandwich norms".into()))?;
            push(
                "post_attention_layernorm.weight".into(),
                Role::Vector,
                norm(pa),
            );
            push(
                "pre_feedforward_layernorm.weight".into(),
                Role::Vector,
                norm(&lw.ffn_norm),
            );
            push(
                "post_feedforward_layernorm.weight".into(),
                Role::Vector,
                norm(pf),
            );
        } else {
            push(
                "post_attention_layernorm.weight".into(),
                Role::Vector,
                norm(&lw.ffn_norm),
            );
        }
        for (n, role, t) in [
            ("gate", Role::Gate, &lw.gate),
            ("up", Role::Up, &lw.up),
            ("down", Role::Down, &lw.down),
        ] {
            push(
                format!("mlp.{n}_proj.weight"),
                role,
                Source::Matrix {
                    tensor: &t.weight,
                    unpermute: None,
                },
            );
        }
    }
    out.push(Entry {
        name: "model.norm.weight".into(),
        role: Role::Vector,
        layer: None,
        src: norm(&model.weights.output_norm),
    });
    if !tied(model) {
        out.push(Entry {
            name: "lm_head.weight".into(),
            role: Role::LmHead,
            layer: None,
            src: Source::Matrix {
                tensor: &model.weights.lm_head,
                unpermute: None,
            },
        });
    }
    Ok(out)
}

/// `config.json` for `model` (`dtype` is the torch dtype name of the weights).
pub fn config_json(model: &Model, dtype: &str) -> Result<Value> {
    let c: &ModelConfig = &model.config;
    if c.rope.freq_factors.is_some() {
        return Err(Error::Unsupported(
            "rope frequency factors (rope_freqs.weight)".into(),
        ));
    }
    let mistral = c.arch == Arch::Llama && c.sliding_window.is_some();
    let (model_type, class) = match c.arch {
        Arch::Llama if mistral => ("mistral", "MistralForCausalLM"),
        Arch::Llama => ("llama", "LlamaForCausalLM"),
        Arch::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
        Arch::Qwen3 => ("qwen3", "Qwen3ForCausalLM"),
        Arch::Gemma3 => ("gemma3_text", "Gemma3ForCausalLM"),
        Arch::Deepseek2 | Arch::Qwen3Moe => return crate::export_moe::config_json(model, dtype),
    };
    let tok = &model.tokenizer;
    let mut v = json!({
        "architectures": [class],
        "model_type": model_type,
        "hidden_size": c.hidden,
        "intermediate_size": c.ffn,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "vocab_size": c.vocab,
        "rms_norm_eps": c.rms_eps,
        "max_position_embeddings": c.context_length,
        "rope_theta": c.rope.base,
        "tie_word_embeddings": tied(model),
        "attention_bias": c.qkv_bias,
        "torch_dtype": dtype,
        "bos_token_id": tok.bos_id(),
        "eos_token_id": tok.eos_ids().first(),
    });
    match c.rope.scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => {
            v["rope_scaling"] = json!({"rope_type": "linear", "factor": factor})
        }
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_context,
        } => {
            v["rope_scaling"] = json!({"rope_type": "llama3", "factor": factor,
                "low_freq_factor": low_freq_factor, "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_context});
        }
    }
    if mistral {
        v["sliding_window"] = json!(c.sliding_window);
    }
    if c.arch == Arch::Gemma3 {
        let types: Vec<&str> = c
            .local_layers
            .iter()
            .map(|&l| {
                if l {
                    "sliding_attention"
                } else {
                    "full_attention"
                }
            })
            .collect();
        v["layer_types"] = json!(types);
        v["sliding_window"] = json!(c.sliding_window);
        v["query_pre_attn_scalar"] = json!(1.0 / (c.attn_scale * c.attn_scale));
        v["rope_local_base_freq"] = json!(c.rope_local.as_ref().map_or(10_000.0, |r| r.base));
        v["hidden_activation"] = json!(match c.activation {
            Activation::GeluTanh => "gelu_pytorch_tanh",
            Activation::Silu => "silu",
        });
    }
    Ok(v)
}

/// Tokenizer files for the export: copied from an HF source folder, else written from the
/// loaded tokenizer (`tokenizer.json` plus a `tokenizer_config.json` naming BOS/EOS, whether
/// BOS is added, and the chat template).
pub fn tokenizer_files(model: &Model, source: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    if source.is_dir() {
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "generation_config.json",
        ] {
            let p = source.join(name);
            if p.is_file() {
                files.push((
                    name.to_string(),
                    std::fs::read(&p).map_err(crate::error::io(&p))?,
                ));
            }
        }
        return Ok(files);
    }
    let tok = &model.tokenizer;
    let text = tok
        .inner()
        .to_string(true)
        .map_err(|e| Error::Unsupported(format!("tokenizer export: {e}")))?;
    files.push(("tokenizer.json".into(), text.into_bytes()));
    let name = |id: Option<u32>| id.and_then(|i| tok.token_str(i));
    let cfg = json!({
        "bos_token": name(tok.bos_id()),
        "eos_token": name(tok.eos_ids().first().copied()),
        "add_bos_token": tok.add_bos(),
        "chat_template": tok.chat_template(),
    });
    files.push((
        "tokenizer_config.json".into(),
        serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Writer(e.to_string()))?,
    ));
    Ok(files)
}
