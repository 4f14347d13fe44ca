//! The calibration forward of one decoder layer over the kept hidden states, in Hugging Face
//! conventions (the exported weights, so quantized replacements drop in by name): pre-norm
//! attention (GQA or MLA) and pre-norm MLP (dense or MoE) with residual adds, calling a hook
//! with the inputs of every linear (its [`Site`]).

use std::collections::HashMap;

use marlin_core::rope::RopeMode;
use marlin_core::QTensor;
use marlin_cpu::matmul;
use marlin_cpu::ops::{self, RopeTable};
use marlin_models::blocks::{AttnWeights, FfnWeights};
use marlin_models::config::{Activation, MlaConfig};
use marlin_models::model::Model;

use super::{attention, moe};
use crate::{Error, Result};

/// The input of a group of linears whose Hessian is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// Normed hidden state entering q/k/v (GQA) or q_a/kv_a (MLA).
    AttnIn,
    /// Attention output entering `o_proj`.
    AttnOut,
    /// Normed `q_a` output entering `q_b_proj`.
    QbIn,
    /// Normed latent `c_kv` entering `kv_b_proj`.
    KvbIn,
    /// Normed hidden state entering gate/up (dense MLP, shared expert, router).
    MlpIn,
    /// Activated product entering a dense MLP's `down_proj`.
    MlpDown,
    /// Activated product entering the shared expert's `down_proj`.
    SharedDown,
    /// The tokens routed to expert `e`, entering its gate/up.
    ExpertIn(usize),
    /// Expert `e`'s activated product entering its `down_proj`.
    ExpertDown(usize),
}

/// One layer's matrices by name suffix (`self_attn.q_proj`), in HF layout, and biases.
#[derive(Default)]
pub struct Mats {
    pub weights: HashMap<String, QTensor>,
    pub biases: HashMap<String, Vec<f32>>,
}

/// Capture hook: `(site, x, rows)` with `x` = `rows` inputs of the site's width.
pub type Hook<'h> = dyn FnMut(Site, &[f32], usize) -> Result<()> + 'h;

/// What a layer's parts need while running.
pub(super) struct Ctx<'a, 'h> {
    pub model: &'a Model,
    pub mats: &'a Mats,
    /// Tokens per calibration window.
    pub win: usize,
    pub n: usize,
    pub hook: &'a mut Hook<'h>,
}

impl Ctx<'_, '_> {
    /// Hand `rows` inputs `x` of `site` to the hook.
    pub fn capture(&mut self, site: Site, x: &[f32], rows: usize) -> Result<()> {
        (self.hook)(site, x, rows)
    }

    pub fn has(&self, name: &str) -> bool {
        self.mats.weights.contains_key(&format!("{name}.weight"))
    }

    /// `x · Wᵀ (+ b)` for the rows of `x` through the matrix `name`.
    pub fn linear(&self, name: &str, x: &[f32]) -> Result<Vec<f32>> {
        let key = format!("{name}.weight");
        let w = self
            .mats
            .weights
            .get(&key)
            .ok_or_else(|| Error::Invalid(format!("calibration: layer has no `{key}`")))?;
        linear(w, self.mats.biases.get(&format!("{name}.bias")), x)
    }

    /// Position of every token (each window starts at 0).
    pub fn positions(&self) -> Vec<usize> {
        (0..self.n).map(|t| t % self.win).collect()
    }

    pub fn mla(&self) -> Result<&MlaConfig> {
        self.model
            .config
            .mla
            .as_ref()
            .ok_or_else(|| Error::Invalid("MLA layer without an MLA config".into()))
    }
}

/// `x · Wᵀ (+ b)` for the rows of `x`.
pub(super) fn linear(w: &QTensor, bias: Option<&Vec<f32>>, x: &[f32]) -> Result<Vec<f32>> {
    let n = x.len() / w.cols().max(1);
    let mut out = vec![0f32; n * w.rows()];
    matmul::matmul(w, x, n, &mut out)?;
    if let Some(b) = bias {
        out.chunks_exact_mut(b.len())
            .for_each(|r| ops::add_inplace(r, b));
    }
    Ok(out)
}

/// RoPE tables in HF conventions for every kind of layer of a model.
pub struct LayerRunner<'m> {
    model: &'m Model,
    rope: RopeTable,
    rope_local: Option<RopeTable>,
    rope_mla: Option<RopeTable>,
}

impl<'m> LayerRunner<'m> {
    /// Tables for `model`; dense models' Q/K are exported in HF's half-split rotary order.
    pub fn new(model: &'m Model) -> Result<Self> {
        let c = &model.config;
        let hf = |r: &marlin_core::rope::RopeConfig| {
            let mut r = r.clone();
            if model.weights.blocks.is_empty() {
                r.mode = RopeMode::Neox;
            }
            r
        };
        let rope_mla = match &c.mla {
            Some(m) => Some(RopeTable::new(&c.rope, m.qk_rope_head_dim)?),
            None => None,
        };
        let rope_local = match &c.rope_local {
            Some(r) => Some(RopeTable::new(&hf(r), c.head_dim)?),
            None => None,
        };
        Ok(Self {
            model,
            rope: RopeTable::new(&hf(&c.rope), c.head_dim)?,
            rope_local,
            rope_mla,
        })
    }

    /// Run layer `l` with `mats` over the hidden states `h` (`n × hidden`, windows of `win`
    /// tokens) in place, calling `hook` with every linear's input.
    pub fn run(
        &self,
        l: usize,
        mats: &Mats,
        h: &mut [f32],
        win: usize,
        hook: &mut Hook<'_>,
    ) -> Result<()> {
        let model = self.model;
        let cfg = &model.config;
        let n = h.len() / cfg.hidden.max(1);
        if win == 0 || !n.is_multiple_of(win) {
            return Err(Error::Invalid(format!("{n} tokens in windows of {win}")));
        }
        let mut c = Ctx {
            model,
            mats,
            win,
            n,
            hook,
        };
        let mut xn = vec![0f32; h.len()];
        if let Some(b) = model.weights.blocks.get(l) {
            ops::rms_norm(h, &b.attn_norm, cfg.rms_eps, &mut xn);
            let a = match &b.attn {
                AttnWeights::Gqa(g) => {
                    let norms = (g.q_norm.as_deref(), g.k_norm.as_deref());
                    attention::gqa(&mut c, &xn, norms, &self.rope, None)?
                }
                AttnWeights::Mla(w) => {
                    let rope = self
                        .rope_mla
                        .as_ref()
                        .ok_or_else(|| Error::Invalid("MLA layer without an MLA config".into()))?;
                    attention::mla(&mut c, &xn, w, rope)?
                }
            };
            ops::add_inplace(h, &a);
            ops::rms_norm(h, &b.ffn_norm, cfg.rms_eps, &mut xn);
            let y = match &b.ffn {
                FfnWeights::Dense(_) => moe::mlp(&mut c, "mlp", &xn, Activation::Silu, false)?,
                FfnWeights::Moe(w) => moe::moe(&mut c, w, &xn)?,
            };
            ops::add_inplace(h, &y);
            return Ok(());
        }
        let lw = model
            .weights
            .layers
            .get(l)
            .ok_or_else(|| Error::Invalid(format!("layer {l} out of range")))?;
        ops::rms_norm(h, &lw.attn_norm, cfg.rms_eps, &mut xn);
        let local = cfg.local_layers.get(l).copied().unwrap_or(false);
        let rope = match (&self.rope_local, local) {
            (Some(r), true) => r,
            _ => &self.rope,
        };
        let window = if local { cfg.sliding_window } else { None };
        let norms = (lw.q_norm.as_deref(), lw.k_norm.as_deref());
        let mut a = attention::gqa(&mut c, &xn, norms, rope, window)?;
        if let Some(w) = &lw.post_attn_norm {
            ops::rms_norm_inplace(&mut a, w, cfg.rms_eps);
        }
        ops::add_inplace(h, &a);
        ops::rms_norm(h, &lw.ffn_norm, cfg.rms_eps, &mut xn);
        let mut y = moe::mlp(&mut c, "mlp", &xn, cfg.activation, false)?;
        if let Some(w) = &lw.post_ffn_norm {
            ops::rms_norm_inplace(&mut y, w, cfg.rms_eps);
        }
        ops::add_inplace(h, &y);
        Ok(())
    }
}
