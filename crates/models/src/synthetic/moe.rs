//! Synthetic MLA + MoE models (GLM-4.7-Flash shapes): the config of a preset with
//! [`MlaMoePreset`] dims, and random blocks built the way the Hugging Face loader builds real
//! ones (`kv_b` cut per head, W_UKᵀ by transposition, a F32 router, one shared expert).

use marlin_core::QuantFormat;
use rayon::prelude::*;

use super::fill::{mix, random_tensor};
use super::format_for;
use crate::blocks::config::{MlaConfig, MoeConfig, Scoring, DEFAULT_EXPANDED_MIN_TOKENS};
use crate::blocks::{AttnWeights, BlockWeights, Expert, FfnWeights, MlaWeights, Mlp, MoeWeights};
use crate::config::{Arch, ModelConfig};
use crate::load::blocks::{row_slice, transpose};
use crate::weights::Linear;
use crate::Result;

/// MLA and MoE dims of a synthetic preset.
#[derive(Debug, Clone, Copy)]
pub struct MlaMoePreset {
    pub q_lora_rank: usize,
    pub kv_lora_rank: usize,
    pub qk_nope_head_dim: usize,
    pub qk_rope_head_dim: usize,
    pub v_head_dim: usize,
    pub n_experts: usize,
    pub top_k: usize,
    pub expert_ffn: usize,
    pub n_shared: usize,
    pub routed_scale: f32,
    /// Leading dense layers.
    pub first_dense: usize,
}

/// Turn a Llama-style config into the MLA + MoE config of `p` (GLM-4.7-Flash conventions).
pub(super) fn configure(cfg: &mut ModelConfig, p: &MlaMoePreset) {
    let qk = p.qk_nope_head_dim + p.qk_rope_head_dim;
    cfg.arch = Arch::Deepseek2;
    cfg.head_dim = qk;
    cfg.n_kv_heads = cfg.n_heads;
    cfg.rope.n_rot = p.qk_rope_head_dim;
    cfg.attn_scale = (qk as f32).powf(-0.5);
    cfg.mla = Some(MlaConfig {
        q_lora_rank: Some(p.q_lora_rank),
        kv_lora_rank: p.kv_lora_rank,
        qk_nope_head_dim: p.qk_nope_head_dim,
        qk_rope_head_dim: p.qk_rope_head_dim,
        v_head_dim: p.v_head_dim,
        lora_norm_eps: 1e-6,
        expanded_min_tokens: DEFAULT_EXPANDED_MIN_TOKENS,
    });
    cfg.moe = Some(MoeConfig {
        n_experts: p.n_experts,
        top_k: p.top_k,
        expert_ffn: p.expert_ffn,
        shared_ffn: p.expert_ffn * p.n_shared,
        scoring: Scoring::Sigmoid,
        norm_topk_prob: true,
        routed_scale: p.routed_scale,
        n_group: 1,
        topk_group: 1,
        sparse_layers: (0..cfg.n_layers).map(|l| l >= p.first_dense).collect(),
    });
}

struct Gen {
    format: QuantFormat,
    layer: usize,
    next: u64,
}

impl Gen {
    /// The seed of this layer's `n`-th tensor.
    fn seed(&self, n: u64) -> u64 {
        mix(((self.layer as u64 + 1) << 20) | n)
    }

    fn tensor(&mut self, rows: usize, cols: usize) -> Result<marlin_core::QTensor> {
        self.next += 1;
        random_tensor(
            format_for(self.format, cols),
            rows,
            cols,
            self.seed(self.next),
        )
    }

    fn sliceable(&mut self, rows: usize, cols: usize) -> Result<marlin_core::QTensor> {
        self.next += 1;
        let seed = mix(((self.layer as u64 + 1) << 20) | self.next);
        let f = format_for(super::row_format(self.format), cols);
        random_tensor(f, rows, cols, seed)
    }

    fn linear(&mut self, rows: usize, cols: usize) -> Result<Linear> {
        Ok(Linear {
            weight: self.tensor(rows, cols)?,
            bias: None,
        })
    }

    fn mlp(&mut self, d: usize, f: usize) -> Result<Mlp> {
        Ok(Mlp {
            gate: self.linear(f, d)?,
            up: self.linear(f, d)?,
            down: self.linear(d, f)?,
        })
    }
}

fn mla(g: &mut Gen, cfg: &ModelConfig, m: &MlaConfig) -> Result<MlaWeights> {
    let (d, hn) = (cfg.hidden, cfg.n_heads);
    let (nope, rd, r, vd) = (
        m.qk_nope_head_dim,
        m.qk_rope_head_dim,
        m.kv_lora_rank,
        m.v_head_dim,
    );
    let ql = m.q_lora_rank.unwrap_or(d);
    // Sliced per head below: a row-addressable format even when the model is trellis.
    let kv_b = g.sliceable(hn * (nope + vd), r)?;
    let (mut k_b, mut k_up, mut v_b) = (Vec::new(), Vec::new(), Vec::new());
    for h in 0..hn {
        let uk = row_slice(&kv_b, h * (nope + vd), nope)?;
        k_b.push(transpose(&uk)?);
        k_up.push(uk);
        v_b.push(row_slice(&kv_b, h * (nope + vd) + nope, vd)?);
    }
    Ok(MlaWeights {
        q_a: Some(g.linear(ql, d)?),
        q_a_norm: Some(vec![1.0; ql]),
        q_b: g.linear(hn * (nope + rd), ql)?,
        kv_a: g.linear(r + rd, d)?,
        kv_a_norm: vec![1.0; r],
        k_b,
        k_up,
        v_b,
        o: g.linear(d, hn * vd)?,
    })
}

fn moe(g: &mut Gen, cfg: &ModelConfig, e: &MoeConfig) -> Result<MoeWeights> {
    let (d, f) = (cfg.hidden, e.expert_ffn);
    // Experts in parallel (a trellis tensor alone fills only a few tasks), with the seeds a
    // sequential build would give: expert i's gate, up, down are tensors 3i + 1, + 2, + 3.
    let first = g.next;
    let gen = &*g;
    let tensor = |n: u64, rows, cols| {
        random_tensor(
            format_for(gen.format, cols),
            rows,
            cols,
            gen.seed(first + n),
        )
    };
    let experts = (0..e.n_experts as u64)
        .into_par_iter()
        .map(|i| {
            Ok(Expert {
                gate: tensor(3 * i + 1, f, d)?,
                up: tensor(3 * i + 2, f, d)?,
                down: tensor(3 * i + 3, d, f)?,
            })
        })
        .collect::<Result<_>>()?;
    g.next = first + 3 * e.n_experts as u64;
    g.next += 1;
    let router = random_tensor(QuantFormat::F32, e.n_experts, d, mix(g.next))?;
    let shared = if e.shared_ffn > 0 {
        Some(g.mlp(d, e.shared_ffn)?)
    } else {
        None
    };
    Ok(MoeWeights {
        router,
        correction_bias: Some(vec![0.0; e.n_experts]),
        experts,
        shared,
    })
}

/// Random blocks for every layer of `cfg` in `format`; `progress(l)` after each.
pub(super) fn blocks(
    cfg: &ModelConfig,
    format: QuantFormat,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<BlockWeights>> {
    let (Some(m), Some(e)) = (&cfg.mla, &cfg.moe) else {
        return Err(crate::Error::Config(
            "MLA / MoE preset without its config".into(),
        ));
    };
    let mut out = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let mut g = Gen {
            format,
            layer: l,
            next: 0,
        };
        let attn = AttnWeights::Mla(Box::new(mla(&mut g, cfg, m)?));
        let ffn = if e.is_sparse(l) {
            FfnWeights::Moe(moe(&mut g, cfg, e)?)
        } else {
            FfnWeights::Dense(g.mlp(cfg.hidden, cfg.ffn)?)
        };
        out.push(BlockWeights {
            attn_norm: vec![1.0; cfg.hidden],
            attn,
            ffn_norm: vec![1.0; cfg.hidden],
            ffn,
        });
        progress(l + 1);
    }
    Ok(out)
}
