//! Loading [`BlockWeights`] (MLA / MoE architectures) from Hugging Face or llama.cpp
//! (`deepseek2`, `qwen3moe`) tensor names, with every shape checked against the config.
//!
//! Fix-ups happen here, not in forward: `kv_b_proj` / `attn_kv_b` is cut per head into W_UK
//! and W_UV, and W_UKᵀ (GGUF `attn_k_b`) or W_UK is made by transposing the other; 3-D expert
//! stacks and per-expert tensors both become one [`Expert`] each; the router is widened to F32.

use std::sync::Arc;

use marlin_core::{QTensor, QuantFormat, TensorData};

use super::{Naming, TensorSource};
use crate::blocks::{
    AttnWeights, BlockWeights, Expert, FfnWeights, GqaWeights, MlaWeights, Mlp, MoeWeights,
};
use crate::config::{MlaConfig, ModelConfig};
use crate::weights::Linear;
use crate::{Error, Result};

struct Src<'a> {
    src: &'a dyn TensorSource,
    naming: Naming,
    l: usize,
}

impl Src<'_> {
    /// The layer tensor with HF suffix `hf` or GGUF suffix `gguf`.
    fn name(&self, hf: &str, gguf: &str) -> String {
        match self.naming {
            Naming::Hf => format!("model.layers.{}.{hf}", self.l),
            Naming::Gguf => format!("blk.{}.{gguf}", self.l),
        }
    }

    fn has(&self, hf: &str, gguf: &str) -> bool {
        self.src.contains(&self.name(hf, gguf))
    }

    fn tensor(&self, hf: &str, gguf: &str, shape: &[usize]) -> Result<QTensor> {
        let name = self.name(hf, gguf);
        let t = self.src.tensor(&name)?;
        if t.shape != shape {
            return Err(Error::Config(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t)
    }

    fn vector(&self, hf: &str, gguf: &str, len: usize) -> Result<Vec<f32>> {
        let name = self.name(hf, gguf);
        let t = self.src.tensor(&name)?;
        if t.numel() != len {
            return Err(Error::Config(format!(
                "tensor `{name}` has shape {:?}, expected [{len}]",
                t.shape
            )));
        }
        Ok(t.to_f32()?)
    }

    fn linear(&self, hf: &str, gguf: &str, rows: usize, cols: usize) -> Result<Linear> {
        let weight = self.tensor(
            &format!("{hf}.weight"),
            &format!("{gguf}.weight"),
            &[rows, cols],
        )?;
        let bias = if self.has(&format!("{hf}.bias"), &format!("{gguf}.bias")) {
            Some(self.vector(&format!("{hf}.bias"), &format!("{gguf}.bias"), rows)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn mlp(&self, hf: &str, gguf_suffix: &str, d: usize, f: usize) -> Result<Mlp> {
        let n = |p: &str| (format!("{hf}.{p}_proj"), format!("ffn_{p}{gguf_suffix}"));
        let ((gh, gg), (uh, ug), (dh, dg)) = (n("gate"), n("up"), n("down"));
        Ok(Mlp {
            gate: self.linear(&gh, &gg, f, d)?,
            up: self.linear(&uh, &ug, f, d)?,
            down: self.linear(&dh, &dg, d, f)?,
        })
    }
}

/// Rows `start..start + count` of a 2-D (or stacked 3-D) tensor as a `[count, cols]` tensor,
/// sharing the memory map when there is one.
pub(crate) fn row_slice(t: &QTensor, start: usize, count: usize) -> Result<QTensor> {
    if t.format.is_trellis() {
        return Err(Error::Unsupported(format!(
            "{}: row slices of a trellis tensor (its tiles span 16 rows); store this weight in a row format",
            t.format
        )));
    }
    let rb = t.row_bytes();
    if start + count > t.rows() {
        return Err(Error::Config(format!(
            "rows {start}..{} of a tensor with {}",
            start + count,
            t.rows()
        )));
    }
    let (a, b) = (start * rb, (start + count) * rb);
    let data = match t.data() {
        TensorData::Mapped { map, range } => TensorData::Mapped {
            map: map.clone(),
            range: range.start + a..range.start + b,
        },
        TensorData::Owned(v) => TensorData::Owned(Arc::new(v[a..b].to_vec())),
    };
    Ok(QTensor::new(t.format, vec![count, t.cols()], data)?)
}

/// `parts` equal row slices of `t`.
fn split_rows(t: &QTensor, parts: usize) -> Result<Vec<QTensor>> {
    let each = t.rows() / parts.max(1);
    (0..parts).map(|i| row_slice(t, i * each, each)).collect()
}

/// The transpose of a 2-D tensor, dequantized: F32 if `t` is F32, else F16.
pub(crate) fn transpose(t: &QTensor) -> Result<QTensor> {
    let (rows, cols) = (t.rows(), t.cols());
    let v = t.to_f32()?;
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    if t.format == QuantFormat::F32 {
        return Ok(QTensor::from_f32(vec![cols, rows], &out)?);
    }
    let bytes: Vec<u8> = out
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect();
    Ok(QTensor::new(
        QuantFormat::F16,
        vec![cols, rows],
        TensorData::Owned(Arc::new(bytes)),
    )?)
}

fn mla(s: &Src<'_>, cfg: &ModelConfig, m: &MlaConfig) -> Result<MlaWeights> {
    let (d, hn) = (cfg.hidden, cfg.n_heads);
    let (nope, rd, r, vd) = (
        m.qk_nope_head_dim,
        m.qk_rope_head_dim,
        m.kv_lora_rank,
        m.v_head_dim,
    );
    let qk = nope + rd;
    let (q_a, q_a_norm, q_b) = match m.q_lora_rank {
        Some(ql) => (
            Some(s.linear("self_attn.q_a_proj", "attn_q_a", ql, d)?),
            Some(s.vector("self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight", ql)?),
            s.linear("self_attn.q_b_proj", "attn_q_b", hn * qk, ql)?,
        ),
        None => (
            None,
            None,
            s.linear("self_attn.q_proj", "attn_q", hn * qk, d)?,
        ),
    };
    let (k_b, k_up, v_b) = if s.has("self_attn.kv_b_proj.weight", "attn_kv_b.weight") {
        let kv_b = s.tensor(
            "self_attn.kv_b_proj.weight",
            "attn_kv_b.weight",
            &[hn * (nope + vd), r],
        )?;
        let (mut k_b, mut k_up, mut v_b) = (Vec::new(), Vec::new(), Vec::new());
        for h in 0..hn {
            let uk = row_slice(&kv_b, h * (nope + vd), nope)?;
            k_b.push(transpose(&uk)?);
            k_up.push(uk);
            v_b.push(row_slice(&kv_b, h * (nope + vd) + nope, vd)?);
        }
        (k_b, k_up, v_b)
    } else {
        // llama.cpp's split form: attn_k_b [H, kv_lora, nope] = W_UKᵀ, attn_v_b [H, v, kv_lora].
        let kb = s.tensor("", "attn_k_b.weight", &[hn, r, nope])?;
        let k_b = split_rows(&kb, hn)?;
        let k_up = k_b.iter().map(transpose).collect::<Result<_>>()?;
        let v_b = split_rows(&s.tensor("", "attn_v_b.weight", &[hn, vd, r])?, hn)?;
        (k_b, k_up, v_b)
    };
    Ok(MlaWeights {
        q_a,
        q_a_norm,
        q_b,
        kv_a: s.linear("self_attn.kv_a_proj_with_mqa", "attn_kv_a_mqa", r + rd, d)?,
        kv_a_norm: s.vector(
            "self_attn.kv_a_layernorm.weight",
            "attn_kv_a_norm.weight",
            r,
        )?,
        k_b,
        k_up,
        v_b,
        o: s.linear("self_attn.o_proj", "attn_output", d, hn * vd)?,
    })
}

fn gqa(s: &Src<'_>, cfg: &ModelConfig) -> Result<GqaWeights> {
    let (d, qd, kvd, hd) = (cfg.hidden, cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
    let norm = |hf: &str, gg: &str| -> Result<Option<Vec<f32>>> {
        if cfg.qk_norm {
            s.vector(hf, gg, hd).map(Some)
        } else {
            Ok(None)
        }
    };
    Ok(GqaWeights {
        q: s.linear("self_attn.q_proj", "attn_q", qd, d)?,
        k: s.linear("self_attn.k_proj", "attn_k", kvd, d)?,
        v: s.linear("self_attn.v_proj", "attn_v", kvd, d)?,
        q_norm: norm("self_attn.q_norm.weight", "attn_q_norm.weight")?,
        k_norm: norm("self_attn.k_norm.weight", "attn_k_norm.weight")?,
        o: s.linear("self_attn.o_proj", "attn_output", d, qd)?,
    })
}

fn experts(s: &Src<'_>, n: usize, d: usize, f: usize) -> Result<Vec<Expert>> {
    if s.naming == Naming::Gguf {
        let g = split_rows(&s.tensor("", "ffn_gate_exps.weight", &[n, f, d])?, n)?;
        let u = split_rows(&s.tensor("", "ffn_up_exps.weight", &[n, f, d])?, n)?;
        let dn = split_rows(&s.tensor("", "ffn_down_exps.weight", &[n, d, f])?, n)?;
        return Ok(g
            .into_iter()
            .zip(u)
            .zip(dn)
            .map(|((gate, up), down)| Expert { gate, up, down })
            .collect());
    }
    if s.has("mlp.experts.gate_up_proj", "") {
        // transformers-5 fused layout: gate_up [E, 2F, d] (gate rows first), down [E, d, F].
        let gu = s.tensor("mlp.experts.gate_up_proj", "", &[n, 2 * f, d])?;
        let dn = split_rows(&s.tensor("mlp.experts.down_proj", "", &[n, d, f])?, n)?;
        return dn
            .into_iter()
            .enumerate()
            .map(|(e, down)| {
                Ok(Expert {
                    gate: row_slice(&gu, e * 2 * f, f)?,
                    up: row_slice(&gu, e * 2 * f + f, f)?,
                    down,
                })
            })
            .collect();
    }
    (0..n)
        .map(|e| {
            let t = |p: &str, shape: &[usize]| {
                s.tensor(&format!("mlp.experts.{e}.{p}_proj.weight"), "", shape)
            };
            Ok(Expert {
                gate: t("gate", &[f, d])?,
                up: t("up", &[f, d])?,
                down: t("down", &[d, f])?,
            })
        })
        .collect()
}

fn moe(s: &Src<'_>, cfg: &ModelConfig) -> Result<MoeWeights> {
    let d = cfg.hidden;
    let mc = cfg
        .moe
        .as_ref()
        .ok_or_else(|| Error::Config("MoE layer without a MoE config".into()))?;
    let router = s.tensor("mlp.gate.weight", "ffn_gate_inp.weight", &[mc.n_experts, d])?;
    let router = QTensor::from_f32(vec![mc.n_experts, d], &router.to_f32()?)?;
    let bias_names = [
        ("mlp.gate.e_score_correction_bias", "exp_probs_b.bias"),
        ("mlp.gate.e_score_correction_bias", "exp_probs_b.weight"),
    ];
    let mut correction_bias = None;
    for (hf, gg) in bias_names {
        if s.has(hf, gg) {
            correction_bias = Some(s.vector(hf, gg, mc.n_experts)?);
            break;
        }
    }
    let shared = if mc.shared_ffn > 0 {
        Some(s.mlp("mlp.shared_experts", "_shexp", d, mc.shared_ffn)?)
    } else {
        None
    };
    Ok(MoeWeights {
        router,
        correction_bias,
        experts: experts(s, mc.n_experts, d, mc.expert_ffn)?,
        shared,
    })
}

/// Every block of an MLA / MoE model; `progress(l)` after layer `l` (1-based count).
pub(super) fn load_blocks(
    src: &dyn TensorSource,
    naming: Naming,
    cfg: &ModelConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<BlockWeights>> {
    let d = cfg.hidden;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let s = Src { src, naming, l };
        let attn = match &cfg.mla {
            Some(m) => AttnWeights::Mla(Box::new(mla(&s, cfg, m)?)),
            None => AttnWeights::Gqa(Box::new(gqa(&s, cfg)?)),
        };
        let sparse = cfg.moe.as_ref().is_some_and(|m| m.is_sparse(l));
        let ffn = if sparse {
            FfnWeights::Moe(moe(&s, cfg)?)
        } else {
            FfnWeights::Dense(s.mlp("mlp", "", d, cfg.ffn)?)
        };
        blocks.push(BlockWeights {
            attn_norm: s.vector("input_layernorm.weight", "attn_norm.weight", d)?,
            attn,
            ffn_norm: s.vector("post_attention_layernorm.weight", "ffn_norm.weight", d)?,
            ffn,
        });
        progress(l + 1);
    }
    Ok(blocks)
}
