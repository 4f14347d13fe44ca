//! Grouped-query attention of a block (Qwen3-MoE): q/k/v projections, optional per-head q/k
//! RMSNorm, RoPE, paged K/V write and causal attention, output projection.

use marlin_cpu::{attention, ops};

use super::forward::linear;
use super::GqaWeights;
use crate::forward::SeqInput;
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::Result;

/// Attention of the normed tokens `xn` into `out` (`n × hidden`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gqa(
    model: &Model,
    l: usize,
    w: &GqaWeights,
    xn: &[f32],
    seqs: &[SeqInput<'_>],
    positions: &[usize],
    kv: &mut KvCache,
    out: &mut [f32],
) -> Result<()> {
    let cfg = &model.config;
    let n = positions.len();
    let (qd, kvd, hd) = (cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
    let mut q = vec![0.0; n * qd];
    let mut k = vec![0.0; n * kvd];
    let mut v = vec![0.0; n * kvd];
    linear(&w.q, xn, n, &mut q)?;
    linear(&w.k, xn, n, &mut k)?;
    linear(&w.v, xn, n, &mut v)?;
    if let (Some(qn), Some(kn)) = (&w.q_norm, &w.k_norm) {
        ops::rms_norm_inplace(&mut q, qn, cfg.rms_eps);
        ops::rms_norm_inplace(&mut k, kn, cfg.rms_eps);
    }
    model.rope.try_apply(&mut q, positions, cfg.n_heads, hd)?;
    model
        .rope
        .try_apply(&mut k, positions, cfg.n_kv_heads, hd)?;
    let layer_kv = kv.layer_mut(l)?;
    let mut att = vec![0.0; n * qd];
    let mut off = 0;
    for seq in seqs {
        let len = seq.tokens.len();
        layer_kv.write_tokens(
            seq.block_table,
            seq.start_pos,
            &k[off * kvd..(off + len) * kvd],
            &v[off * kvd..(off + len) * kvd],
        )?;
        attention::attention(
            &q[off * qd..(off + len) * qd],
            &positions[off..off + len],
            layer_kv,
            seq.block_table,
            cfg.n_heads,
            cfg.attn_scale,
            None,
            &mut att[off * qd..(off + len) * qd],
        )?;
        off += len;
    }
    linear(&w.o, &att, n, out)
}
