//! Export of MLA / MoE models (`glm4_moe_lite` / DeepSeek-V2/V3 as `deepseek2`, `qwen3_moe`):
//! every block tensor under the Hugging Face names the HF-folder loader reads back (MLA
//! `kv_b_proj` rebuilt from the per-head W_UK / W_UV, one tensor per routed expert, the router
//! and its correction bias), and a `config.json` for them.

use marlin_core::QTensor;
use marlin_models::blocks::{AttnWeights, FfnWeights, Mlp};
use marlin_models::config::{Arch, Scoring};
use marlin_models::model::Model;
use marlin_models::weights::Linear;
use serde_json::{json, Value};

use crate::export::{tied, Entry, Proj, Role, Source};
use crate::{Error, Result};

fn matrix(t: &QTensor) -> Source<'_> {
    Source::Matrix {
        tensor: t,
        unpermute: None,
    }
}

/// Pushes the tensors of one layer under `model.layers.{l}.`.
struct Layer<'a, 'o> {
    out: &'o mut Vec<Entry<'a>>,
    l: usize,
}

impl<'a> Layer<'a, '_> {
    fn push(&mut self, name: &str, role: Role, src: Source<'a>) {
        self.out.push(Entry {
            name: format!("model.layers.{}.{name}", self.l),
            role,
            layer: Some(self.l),
            src,
        });
    }

    fn linear(&mut self, name: &str, role: Role, lin: &'a Linear) {
        self.push(&format!("{name}.weight"), role, matrix(&lin.weight));
        if let Some(b) = &lin.bias {
            self.push(
                &format!("{name}.bias"),
                Role::Vector,
                Source::Vector(b.clone()),
            );
        }
    }

    fn mlp(&mut self, prefix: &str, m: &'a Mlp, shared: bool) {
        for (p, lin) in [
            (Proj::Gate, &m.gate),
            (Proj::Up, &m.up),
            (Proj::Down, &m.down),
        ] {
            let role = match (shared, p) {
                (true, p) => Role::Shared(p),
                (false, Proj::Gate) => Role::Gate,
                (false, Proj::Up) => Role::Up,
                (false, Proj::Down) => Role::Down,
            };
            self.linear(&format!("{prefix}.{}_proj", proj_name(p)), role, lin);
        }
    }
}

/// `gate`, `up` or `down`.
pub fn proj_name(p: Proj) -> &'static str {
    match p {
        Proj::Gate => "gate",
        Proj::Up => "up",
        Proj::Down => "down",
    }
}

/// Every tensor of an MLA / MoE `model` under its HF name, in a stable order.
pub fn entries(model: &Model) -> Result<Vec<Entry<'_>>> {
    let w = &model.weights;
    let vec = |v: &Vec<f32>| Source::Vector(v.clone());
    let mut out = vec![Entry {
        name: "model.embed_tokens.weight".into(),
        role: Role::Embed,
        layer: None,
        src: matrix(&w.embed),
    }];
    for (l, b) in w.blocks.iter().enumerate() {
        let mut p = Layer { out: &mut out, l };
        p.push("input_layernorm.weight", Role::Vector, vec(&b.attn_norm));
        match &b.attn {
            AttnWeights::Gqa(g) => {
                p.linear("self_attn.q_proj", Role::Q, &g.q);
                p.linear("self_attn.k_proj", Role::K, &g.k);
                p.linear("self_attn.v_proj", Role::V, &g.v);
                if let (Some(qn), Some(kn)) = (&g.q_norm, &g.k_norm) {
                    p.push("self_attn.q_norm.weight", Role::Vector, vec(qn));
                    p.push("self_attn.k_norm.weight", Role::Vector, vec(kn));
                }
                p.linear("self_attn.o_proj", Role::O, &g.o);
            }
            AttnWeights::Mla(m) => {
                match (&m.q_a, &m.q_a_norm) {
                    (Some(qa), Some(qn)) => {
                        p.linear("self_attn.q_a_proj", Role::QA, qa);
                        p.push("self_attn.q_a_layernorm.weight", Role::Vector, vec(qn));
                        p.linear("self_attn.q_b_proj", Role::QB, &m.q_b);
                    }
                    _ => p.linear("self_attn.q_proj", Role::Q, &m.q_b),
                }
                p.linear("self_attn.kv_a_proj_with_mqa", Role::KvA, &m.kv_a);
                p.push(
                    "self_attn.kv_a_layernorm.weight",
                    Role::Vector,
                    vec(&m.kv_a_norm),
                );
                p.push(
                    "self_attn.kv_b_proj.weight",
                    Role::KvB,
                    Source::KvB {
                        k_up: &m.k_up,
                        v_b: &m.v_b,
                    },
                );
                p.linear("self_attn.o_proj", Role::O, &m.o);
            }
        }
        p.push(
            "post_attention_layernorm.weight",
            Role::Vector,
            vec(&b.ffn_norm),
        );
        match &b.ffn {
            FfnWeights::Dense(m) => p.mlp("mlp", m, false),
            FfnWeights::Moe(moe) => {
                p.push("mlp.gate.weight", Role::Router, matrix(&moe.router));
                if let Some(bias) = &moe.correction_bias {
                    p.push("mlp.gate.e_score_correction_bias", Role::Vector, vec(bias));
                }
                for (e, x) in moe.experts.iter().enumerate() {
                    for (pr, t) in [
                        (Proj::Gate, &x.gate),
                        (Proj::Up, &x.up),
                        (Proj::Down, &x.down),
                    ] {
                        let name = format!("mlp.experts.{e}.{}_proj.weight", proj_name(pr));
                        p.push(&name, Role::Expert(e, pr), matrix(t));
                    }
                }
                if let Some(s) = &moe.shared {
                    p.mlp("mlp.shared_experts", s, true);
                }
            }
        }
    }
    out.push(Entry {
        name: "model.norm.weight".into(),
        role: Role::Vector,
        layer: None,
        src: vec(&w.output_norm),
    });
    if !tied(model) {
        out.push(Entry {
            name: "lm_head.weight".into(),
            role: Role::LmHead,
            layer: None,
            src: matrix(&w.lm_head),
        });
    }
    Ok(out)
}

/// `config.json` of an MLA / MoE model (`deepseek_v3` or `qwen3_moe` layout).
pub fn config_json(model: &Model, dtype: &str) -> Result<Value> {
    let c = &model.config;
    let moe = c
        .moe
        .as_ref()
        .ok_or_else(|| Error::Unsupported(format!("{} without a MoE config", c.arch.name())))?;
    let tok = &model.tokenizer;
    let mut v = json!({
        "hidden_size": c.hidden,
        "intermediate_size": c.ffn,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "vocab_size": c.vocab,
        "rms_norm_eps": c.rms_eps,
        "max_position_embeddings": c.context_length,
        "rope_theta": c.rope.base,
        "tie_word_embeddings": tied(model),
        "attention_bias": c.qkv_bias,
        "torch_dtype": dtype,
        "bos_token_id": tok.bos_id(),
        "eos_token_id": tok.eos_ids().first(),
        "moe_intermediate_size": moe.expert_ffn,
        "num_experts_per_tok": moe.top_k,
        "norm_topk_prob": moe.norm_topk_prob,
    });
    if c.rope.scaling != marlin_core::rope::RopeScaling::None {
        return Err(Error::Unsupported(
            "rope scaling in MoE config export".into(),
        ));
    }
    match (c.arch, &c.mla) {
        (Arch::Deepseek2, Some(m)) => {
            let types: Vec<&str> = moe
                .sparse_layers
                .iter()
                .map(|&s| if s { "sparse" } else { "dense" })
                .collect();
            let extra = json!({
                "architectures": ["DeepseekV3ForCausalLM"],
                "model_type": "deepseek_v3",
                "q_lora_rank": m.q_lora_rank,
                "kv_lora_rank": m.kv_lora_rank,
                "qk_nope_head_dim": m.qk_nope_head_dim,
                "qk_rope_head_dim": m.qk_rope_head_dim,
                "v_head_dim": m.v_head_dim,
                "rope_interleave": c.rope.mode == marlin_core::rope::RopeMode::Normal,
                "n_routed_experts": moe.n_experts,
                "n_shared_experts": moe.shared_ffn / moe.expert_ffn.max(1),
                "scoring_func": match moe.scoring {
                    Scoring::Softmax => "softmax",
                    Scoring::Sigmoid => "sigmoid",
                },
                "routed_scaling_factor": moe.routed_scale,
                "n_group": moe.n_group,
                "topk_group": moe.topk_group,
                "mlp_layer_types": types,
            });
            merge(&mut v, extra);
        }
        (Arch::Qwen3Moe, None) => {
            let dense: Vec<usize> = (0..c.n_layers).filter(|&l| !moe.is_sparse(l)).collect();
            let extra = json!({
                "architectures": ["Qwen3MoeForCausalLM"],
                "model_type": "qwen3_moe",
                "head_dim": c.head_dim,
                "num_experts": moe.n_experts,
                "decoder_sparse_step": 1,
                "mlp_only_layers": dense,
            });
            merge(&mut v, extra);
        }
        (arch, _) => {
            return Err(Error::Unsupported(format!(
                "config export of {} blocks",
                arch.name()
            )))
        }
    }
    Ok(v)
}

fn merge(v: &mut Value, extra: Value) {
    if let (Some(a), Value::Object(b)) = (v.as_object_mut(), extra) {
        a.extend(b);
    }
}
