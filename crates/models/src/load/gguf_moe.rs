//! The MLA and MoE parts of GGUF metadata, llama.cpp's `deepseek2` (GLM-4.7-Flash,
//! DeepSeek-V2/V3; both the legacy `attn_kv_b` form and the split `attn_k_b`/`attn_v_b` form,
//! where the file presents MLA as MQA with `key_length = kv_lora + rope`) and `qwen3moe`.

use crate::blocks::config::{MlaConfig, MoeConfig, Scoring, DEFAULT_EXPANDED_MIN_TOKENS};
use crate::config::{Arch, ModelConfig};
use crate::gguf::GgufFile;
use crate::{Error, Result};

/// The `q_a`/`kv_a` norm epsilon transformers uses (GGUF does not store it).
const LORA_NORM_EPS: f32 = 1e-6;

/// llama.cpp's `expert_gating_func` values.
const GATING_SOFTMAX: u64 = 1;
const GATING_SIGMOID: u64 = 2;

struct Md<'a> {
    g: &'a GgufFile,
    arch: &'a str,
}

impl Md<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    fn opt(&self, k: &str) -> Result<Option<usize>> {
        let key = self.key(k);
        match self.g.metadata().opt_u64(&key)? {
            Some(v) => usize::try_from(v)
                .map(Some)
                .map_err(|_| Error::Config(format!("`{key}` = {v} is too large"))),
            None => Ok(None),
        }
    }

    fn req(&self, k: &str) -> Result<usize> {
        self.opt(k)?.ok_or_else(|| Error::MissingKey(self.key(k)))
    }

    fn f32(&self, k: &str) -> Result<Option<f32>> {
        self.g.metadata().opt_f32(&self.key(k))
    }

    fn bool(&self, k: &str) -> Result<Option<bool>> {
        self.g.metadata().opt_bool(&self.key(k))
    }
}

/// Fill in `cfg`'s MLA / MoE fields for the architectures that have them.
pub(crate) fn apply(g: &GgufFile, cfg: &mut ModelConfig) -> Result<()> {
    let md = Md {
        g,
        arch: cfg.arch.name(),
    };
    // Newer converters count the multi-token-prediction layers in block_count; skip them.
    if let Some(mtp) = md.opt("nextn_predict_layers")?.filter(|&k| k > 0) {
        if mtp >= cfg.n_layers {
            return Err(Error::Config(format!(
                "{mtp} next-token-prediction layers of {} blocks",
                cfg.n_layers
            )));
        }
        cfg.n_layers -= mtp;
        cfg.local_layers.truncate(cfg.n_layers);
    }
    match cfg.arch {
        Arch::Deepseek2 => {
            mla(&md, cfg)?;
            moe(&md, cfg, Scoring::Softmax, false)
        }
        Arch::Qwen3Moe => {
            cfg.qk_norm = true;
            // llama.cpp's qwen3moe graph always renormalises the picked weights.
            moe(&md, cfg, Scoring::Softmax, true)
        }
        _ => Ok(()),
    }
}

fn mla(md: &Md<'_>, cfg: &mut ModelConfig) -> Result<()> {
    let rope = md.req("rope.dimension_count")?;
    let kv_lora = md.req("attention.kv_lora_rank")?;
    let qk = match md.opt("attention.key_length_mla")? {
        Some(k) => k,
        None => md.req("attention.key_length")?,
    };
    let v = match md.opt("attention.value_length_mla")? {
        Some(v) => v,
        None => md.req("attention.value_length")?,
    };
    if qk <= rope {
        return Err(Error::Config(format!(
            "MLA key length {qk} leaves no room beside {rope} rope dims"
        )));
    }
    let m = MlaConfig {
        q_lora_rank: md.opt("attention.q_lora_rank")?.filter(|&r| r > 0),
        kv_lora_rank: kv_lora,
        qk_nope_head_dim: qk - rope,
        qk_rope_head_dim: rope,
        v_head_dim: v,
        lora_norm_eps: LORA_NORM_EPS,
        expanded_min_tokens: DEFAULT_EXPANDED_MIN_TOKENS,
    };
    cfg.head_dim = qk;
    cfg.n_kv_heads = cfg.n_heads;
    cfg.rope.n_rot = rope;
    cfg.attn_scale = (qk as f32).powf(-0.5);
    cfg.mla = Some(m);
    Ok(())
}

fn moe(md: &Md<'_>, cfg: &mut ModelConfig, default: Scoring, default_norm: bool) -> Result<()> {
    let n_experts = md.req("expert_count")?;
    let expert_ffn = md.req("expert_feed_forward_length")?;
    let scoring = match md.opt("expert_gating_func")? {
        None => default,
        Some(f) if f as u64 == GATING_SOFTMAX => Scoring::Softmax,
        Some(f) if f as u64 == GATING_SIGMOID => Scoring::Sigmoid,
        Some(f) => return Err(Error::Unsupported(format!("expert_gating_func {f}"))),
    };
    // A layer is MoE when it has a router (covers leading dense blocks and dense-only layers).
    let sparse_layers = (0..cfg.n_layers)
        .map(|l| {
            md.g.tensor_info(&format!("blk.{l}.ffn_gate_inp.weight"))
                .is_some()
        })
        .collect();
    let n_shared = md.opt("expert_shared_count")?.unwrap_or(0);
    cfg.moe = Some(MoeConfig {
        n_experts,
        top_k: md.req("expert_used_count")?,
        expert_ffn,
        shared_ffn: expert_ffn * n_shared,
        scoring,
        norm_topk_prob: md.bool("expert_weights_norm")?.unwrap_or(default_norm),
        routed_scale: md.f32("expert_weights_scale")?.unwrap_or(1.0),
        n_group: md.opt("expert_group_count")?.unwrap_or(1).max(1),
        topk_group: md.opt("expert_group_used_count")?.unwrap_or(1).max(1),
        sparse_layers,
    });
    Ok(())
}
