//! The CPU forward step of a model built from [`BlockWeights`]: embed, then per block
//! pre-norm attention (GQA or MLA) and pre-norm MLP (dense or MoE) with residual adds, then
//! the LM head — same inputs, KV addressing and logits as [`Model::forward`].

use marlin_cpu::{matmul, ops};

use super::{gqa, mla, moe, AttnWeights, BlockWeights, FfnWeights};
use crate::forward::{Logits, SeqInput};
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::weights::Linear;
use crate::{Error, Result};

/// `out = W x (+ b)` for `n` rows of `x`.
pub(super) fn linear(l: &Linear, x: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
    matmul::matmul(&l.weight, x, n, out)?;
    if let Some(b) = &l.bias {
        for row in out.chunks_exact_mut(b.len()) {
            ops::add_inplace(row, b);
        }
    }
    Ok(())
}

/// Absolute positions of every token of `seqs`, checked against the context length.
pub(super) fn positions(model: &Model, seqs: &[SeqInput<'_>]) -> Result<Vec<usize>> {
    let mut positions = Vec::new();
    for s in seqs {
        positions.extend(s.start_pos..s.start_pos + s.tokens.len());
    }
    if let Some(&p) = positions.iter().max() {
        if p >= model.config.context_length {
            return Err(Error::Config(format!(
                "position {p} is past the context length {}",
                model.config.context_length
            )));
        }
    }
    Ok(positions)
}

impl Model {
    /// [`Model::forward`] for models with [`BlockWeights`] (MLA / MoE architectures).
    pub(crate) fn forward_blocks(&self, seqs: &[SeqInput<'_>], kv: &mut KvCache) -> Result<Logits> {
        let cfg = &self.config;
        let d = cfg.hidden;
        let positions = positions(self, seqs)?;
        let n = positions.len();
        let mut h = vec![0.0; n * d];
        self.embed(seqs, &mut h)?;
        let mut xn = vec![0.0; n * d];
        let mut tmp = vec![0.0; n * d];
        for (l, b) in self.weights.blocks.iter().enumerate() {
            self.block(l, b, seqs, &positions, kv, &mut h, &mut xn, &mut tmp)?;
        }
        self.logits(seqs, &h)
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        l: usize,
        b: &BlockWeights,
        seqs: &[SeqInput<'_>],
        positions: &[usize],
        kv: &mut KvCache,
        h: &mut [f32],
        xn: &mut [f32],
        tmp: &mut [f32],
    ) -> Result<()> {
        let cfg = &self.config;
        let n = positions.len();
        ops::rms_norm(h, &b.attn_norm, cfg.rms_eps, xn);
        match &b.attn {
            AttnWeights::Gqa(w) => gqa::gqa(self, l, w, xn, seqs, positions, kv, tmp)?,
            AttnWeights::Mla(w) => mla::mla(self, l, w, xn, seqs, positions, kv, tmp)?,
        }
        ops::add_inplace(h, tmp);
        ops::rms_norm(h, &b.ffn_norm, cfg.rms_eps, xn);
        match &b.ffn {
            FfnWeights::Dense(m) => moe::mlp(m, xn, n, tmp)?,
            FfnWeights::Moe(w) => {
                let mc = cfg.moe.as_ref().ok_or_else(|| {
                    Error::Config(format!("layer {l} has experts but the config no MoE"))
                })?;
                moe::moe(mc, w, xn, n, tmp)?;
            }
        }
        ops::add_inplace(h, tmp);
        Ok(())
    }
}
