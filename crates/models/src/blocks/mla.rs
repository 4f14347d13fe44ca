//! Multi-head latent attention of a block: queries (optionally through the q_lora bottleneck),
//! the latent `[RMSNorm(c_kv) ‖ RoPE(k_pe)]` written to the paged latent cache, then attention
//! in the absorbed form (W_UK folded into the query, W_UV applied after attending the latent)
//! or, for long prefill chunks, the expanded form.

use marlin_cpu::{attention, matmul, ops};

use super::forward::linear;
use super::{mla_expanded, MlaWeights};
use crate::config::MlaConfig;
use crate::forward::SeqInput;
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::{Error, Result};

/// One sequence chunk's queries, split as the attention forms need them.
pub(super) struct Queries<'a> {
    /// `len × H × (nope + rope)`; the rope part is not rotated (use `pe`).
    pub q: &'a [f32],
    /// `len × H × rope`, rotated.
    pub pe: &'a [f32],
    pub positions: &'a [usize],
}

/// Copies `src[i*src_w + at ..][..w]` into `dst[i*dst_w + dst_at ..]` for every row `i`.
pub(super) fn strided_copy(
    src: &[f32],
    (src_w, at): (usize, usize),
    dst: &mut [f32],
    (dst_w, dst_at): (usize, usize),
    w: usize,
) {
    for (s, d) in src.chunks_exact(src_w).zip(dst.chunks_exact_mut(dst_w)) {
        d[dst_at..dst_at + w].copy_from_slice(&s[at..at + w]);
    }
}

/// MLA of the normed tokens `xn` into `out` (`n × hidden`).
#[allow(clippy::too_many_arguments)]
pub(super) fn mla(
    model: &Model,
    l: usize,
    w: &MlaWeights,
    xn: &[f32],
    seqs: &[SeqInput<'_>],
    positions: &[usize],
    kv: &mut KvCache,
    out: &mut [f32],
) -> Result<()> {
    let cfg = &model.config;
    let (m, rope) = match (&cfg.mla, &model.rope_mla) {
        (Some(m), Some(r)) => (m, r),
        _ => {
            return Err(Error::Config(format!(
                "layer {l} is MLA but the config is not"
            )))
        }
    };
    let n = positions.len();
    let hn = cfg.n_heads;
    if w.k_b.len() != hn || w.k_up.len() != hn || w.v_b.len() != hn {
        return Err(Error::Config(format!(
            "layer {l}: MLA weights for {}/{}/{} heads, the config has {hn}",
            w.k_b.len(),
            w.k_up.len(),
            w.v_b.len()
        )));
    }
    let (nope, rd, r, wid) = (
        m.qk_nope_head_dim,
        m.qk_rope_head_dim,
        m.kv_lora_rank,
        m.latent_width(),
    );
    let qk = nope + rd;
    let mut q = vec![0.0; n * hn * qk];
    match (&w.q_a, &w.q_a_norm) {
        (Some(qa), Some(qa_norm)) => {
            let mut c = vec![0.0; n * qa.out_features()];
            linear(qa, xn, n, &mut c)?;
            ops::rms_norm_inplace(&mut c, qa_norm, m.lora_norm_eps);
            linear(&w.q_b, &c, n, &mut q)?;
        }
        _ => linear(&w.q_b, xn, n, &mut q)?,
    }
    let mut pe = vec![0.0; n * hn * rd];
    strided_copy(&q, (qk, nope), &mut pe, (rd, 0), rd);
    rope.try_apply(&mut pe, positions, hn, rd)?;

    let mut lat = vec![0.0; n * wid];
    linear(&w.kv_a, xn, n, &mut lat)?;
    let mut kpe = vec![0.0; n * rd];
    for (row, k) in lat.chunks_exact_mut(wid).zip(kpe.chunks_exact_mut(rd)) {
        ops::rms_norm_inplace(&mut row[..r], &w.kv_a_norm, m.lora_norm_eps);
        k.copy_from_slice(&row[r..]);
    }
    rope.try_apply(&mut kpe, positions, 1, rd)?;
    strided_copy(&kpe, (rd, 0), &mut lat, (wid, r), rd);

    let cache = kv.latent_mut(l)?;
    let vd = m.v_head_dim;
    let mut att = vec![0.0; n * hn * vd];
    let mut off = 0;
    for seq in seqs {
        let len = seq.tokens.len();
        for (i, row) in lat[off * wid..(off + len) * wid]
            .chunks_exact(wid)
            .enumerate()
        {
            cache.write(seq.block_table, seq.start_pos + i, row)?;
        }
        let qs = Queries {
            q: &q[off * hn * qk..(off + len) * hn * qk],
            pe: &pe[off * hn * rd..(off + len) * hn * rd],
            positions: &positions[off..off + len],
        };
        let o = &mut att[off * hn * vd..(off + len) * hn * vd];
        if len >= m.expanded_min_tokens {
            mla_expanded::attend(w, m, hn, cfg.attn_scale, cache, seq.block_table, &qs, o)?;
        } else {
            absorbed(w, m, hn, cfg.attn_scale, cache, seq.block_table, &qs, o)?;
        }
        off += len;
    }
    linear(&w.o, &att, n, out)
}

/// The absorbed form: `q̃_h = W_UK_hᵀ q_h^nope`, attention over the latent rows with
/// `[q̃_h ‖ q_h^pe]`, then `o_h = W_UV_h ō_h`. Writes `len × H × v` into `att`.
#[allow(clippy::too_many_arguments)]
pub(super) fn absorbed(
    w: &MlaWeights,
    m: &MlaConfig,
    hn: usize,
    scale: f32,
    cache: &marlin_cpu::kv_latent::PagedLatent,
    block_table: &[u32],
    qs: &Queries<'_>,
    att: &mut [f32],
) -> Result<()> {
    let len = qs.positions.len();
    let (nope, rd, r, vd) = (
        m.qk_nope_head_dim,
        m.qk_rope_head_dim,
        m.kv_lora_rank,
        m.v_head_dim,
    );
    let (qk, wid) = (nope + rd, m.latent_width());
    let mut q_abs = vec![0.0; len * hn * wid];
    let mut x = vec![0.0; len * nope];
    let mut y = vec![0.0; len * r];
    for h in 0..hn {
        strided_copy(qs.q, (hn * qk, h * qk), &mut x, (nope, 0), nope);
        matmul::matmul(&w.k_b[h], &x, len, &mut y)?;
        strided_copy(&y, (r, 0), &mut q_abs, (hn * wid, h * wid), r);
        strided_copy(
            qs.pe,
            (hn * rd, h * rd),
            &mut q_abs,
            (hn * wid, h * wid + r),
            rd,
        );
    }
    let mut latent_out = vec![0.0; len * hn * r];
    attention::mla_attention(
        &q_abs,
        qs.positions,
        cache,
        block_table,
        hn,
        r,
        scale,
        &mut latent_out,
    )?;
    let mut z = vec![0.0; len * vd];
    for h in 0..hn {
        strided_copy(&latent_out, (hn * r, h * r), &mut y, (r, 0), r);
        matmul::matmul(&w.v_b[h], &y, len, &mut z)?;
        strided_copy(&z, (vd, 0), att, (hn * vd, h * vd), vd);
    }
    Ok(())
}
