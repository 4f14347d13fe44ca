//! Attention of the calibration forward, on plain f32 activations in Hugging Face layout:
//! causal multi-head attention inside each calibration window (grouped KV heads, separate
//! key and value widths, optional sliding window), and the GQA and MLA halves of a layer.

use marlin_cpu::ops::{self, RopeTable};
use rayon::prelude::*;

use super::forward::{Ctx, Site};
use crate::Result;

/// Head layout of one attention call.
pub(super) struct Heads {
    pub q: usize,
    pub kv: usize,
    /// Query/key width per head.
    pub dk: usize,
    /// Value width per head.
    pub dv: usize,
    pub scale: f32,
    /// Keys further back than this many positions are masked (sliding-window layers).
    pub window: Option<usize>,
}

/// Causal attention of `q` (`n × H·dk`), `k` (`n × Hkv·dk`), `v` (`n × Hkv·dv`) where the
/// `n` tokens are consecutive windows of `win` tokens, each starting at position 0.
pub(super) fn causal(q: &[f32], k: &[f32], v: &[f32], win: usize, h: &Heads) -> Vec<f32> {
    let n = q.len() / (h.q * h.dk).max(1);
    let group = h.q / h.kv.max(1);
    let mut out = vec![0f32; n * h.q * h.dv];
    out.par_chunks_mut(h.q * h.dv)
        .enumerate()
        .for_each(|(t, o)| {
            let (start, pos) = (t - t % win, t % win);
            let first = h.window.map_or(0, |w| (pos + 1).saturating_sub(w));
            for hq in 0..h.q {
                let hk = hq / group.max(1);
                let qh = &q[(t * h.q + hq) * h.dk..][..h.dk];
                let scores: Vec<f32> = (first..=pos)
                    .map(|p| {
                        let kr = &k[((start + p) * h.kv + hk) * h.dk..][..h.dk];
                        h.scale * qh.iter().zip(kr).map(|(a, b)| a * b).sum::<f32>()
                    })
                    .collect();
                let mx = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let inv = 1.0 / e.iter().sum::<f32>();
                let oh = &mut o[hq * h.dv..(hq + 1) * h.dv];
                for (i, &et) in e.iter().enumerate() {
                    let vr = &v[((start + first + i) * h.kv + hk) * h.dv..][..h.dv];
                    for (x, &y) in oh.iter_mut().zip(vr) {
                        *x += et * inv * y;
                    }
                }
            }
        });
    out
}

/// Per-head RMSNorm and RoPE of `x` (`n × heads × hd`).
fn norm_rope(
    x: &mut [f32],
    norm: Option<&[f32]>,
    eps: f32,
    rope: &RopeTable,
    pos: &[usize],
    heads: usize,
) -> Result<()> {
    if let Some(w) = norm {
        ops::rms_norm_inplace(x, w, eps);
    }
    rope.try_apply(x, pos, heads, rope.head_dim())?;
    Ok(())
}

/// Grouped-query attention of the normed `xn` (GQA inputs captured): the `o_proj` output.
pub(super) fn gqa(
    c: &mut Ctx<'_, '_>,
    xn: &[f32],
    qk_norm: (Option<&[f32]>, Option<&[f32]>),
    rope: &RopeTable,
    window: Option<usize>,
) -> Result<Vec<f32>> {
    let cfg = &c.model.config;
    c.capture(Site::AttnIn, xn, c.n)?;
    let mut q = c.linear("self_attn.q_proj", xn)?;
    let mut k = c.linear("self_attn.k_proj", xn)?;
    let v = c.linear("self_attn.v_proj", xn)?;
    let pos = c.positions();
    norm_rope(&mut q, qk_norm.0, cfg.rms_eps, rope, &pos, cfg.n_heads)?;
    norm_rope(&mut k, qk_norm.1, cfg.rms_eps, rope, &pos, cfg.n_kv_heads)?;
    let heads = Heads {
        q: cfg.n_heads,
        kv: cfg.n_kv_heads,
        dk: cfg.head_dim,
        dv: cfg.head_dim,
        scale: cfg.attn_scale,
        window,
    };
    let att = causal(&q, &k, &v, c.win, &heads);
    c.capture(Site::AttnOut, &att, c.n)?;
    c.linear("self_attn.o_proj", &att)
}

/// Multi-head latent attention (expanded form) of the normed `xn`: the `o_proj` output.
pub(super) fn mla(
    c: &mut Ctx<'_, '_>,
    xn: &[f32],
    w: &marlin_models::blocks::MlaWeights,
    rope: &RopeTable,
) -> Result<Vec<f32>> {
    let cfg = &c.model.config;
    let m = c.mla()?.clone();
    let (hn, nope, rd, r, vd) = (
        cfg.n_heads,
        m.qk_nope_head_dim,
        m.qk_rope_head_dim,
        m.kv_lora_rank,
        m.v_head_dim,
    );
    let qk = nope + rd;
    c.capture(Site::AttnIn, xn, c.n)?;
    let mut q = match &w.q_a_norm {
        Some(qn) if c.has("self_attn.q_a_proj") => {
            let mut cq = c.linear("self_attn.q_a_proj", xn)?;
            ops::rms_norm_inplace(&mut cq, qn, m.lora_norm_eps);
            c.capture(Site::QbIn, &cq, c.n)?;
            c.linear("self_attn.q_b_proj", &cq)?
        }
        _ => c.linear("self_attn.q_proj", xn)?,
    };
    let lat = c.linear("self_attn.kv_a_proj_with_mqa", xn)?;
    let n = lat.len() / (r + rd);
    let (mut ckv, mut kpe) = (vec![0f32; n * r], vec![0f32; n * rd]);
    for ((row, cr), kr) in lat
        .chunks_exact(r + rd)
        .zip(ckv.chunks_exact_mut(r))
        .zip(kpe.chunks_exact_mut(rd))
    {
        cr.copy_from_slice(&row[..r]);
        kr.copy_from_slice(&row[r..]);
    }
    ops::rms_norm_inplace(&mut ckv, &w.kv_a_norm, m.lora_norm_eps);
    let pos = c.positions();
    rope.try_apply(&mut kpe, &pos, 1, rd)?;
    c.capture(Site::KvbIn, &ckv, c.n)?;
    let kv = c.linear("self_attn.kv_b_proj", &ckv)?;
    let mut keys = vec![0f32; n * hn * qk];
    let mut vals = vec![0f32; n * hn * vd];
    let mut pe = vec![0f32; n * hn * rd];
    for t in 0..n {
        for h in 0..hn {
            let src = &kv[(t * hn + h) * (nope + vd)..][..nope + vd];
            let kd = &mut keys[(t * hn + h) * qk..][..qk];
            kd[..nope].copy_from_slice(&src[..nope]);
            kd[nope..].copy_from_slice(&kpe[t * rd..(t + 1) * rd]);
            vals[(t * hn + h) * vd..][..vd].copy_from_slice(&src[nope..]);
            pe[(t * hn + h) * rd..][..rd].copy_from_slice(&q[(t * hn + h) * qk + nope..][..rd]);
        }
    }
    rope.try_apply(&mut pe, &pos, hn, rd)?;
    for (qrow, prow) in q.chunks_exact_mut(qk).zip(pe.chunks_exact(rd)) {
        qrow[nope..].copy_from_slice(prow);
    }
    let heads = Heads {
        q: hn,
        kv: hn,
        dk: qk,
        dv: vd,
        scale: cfg.attn_scale,
        window: None,
    };
    let att = causal(&q, &keys, &vals, c.win, &heads);
    c.capture(Site::AttnOut, &att, c.n)?;
    c.linear("self_attn.o_proj", &att)
}
