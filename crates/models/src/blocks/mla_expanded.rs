//! The expanded MLA form (prefill): every cached latent of the sequence is decompressed per
//! head into a key `[W_UK_h c_kv ‖ k_pe]` and a value `W_UV_h c_kv`, then ordinary causal
//! attention with queries `[q_nope ‖ q_pe]`. Same result as the absorbed form.

use marlin_cpu::kv_latent::PagedLatent;
use marlin_cpu::matmul;
use rayon::prelude::*;

use super::mla::{strided_copy, Queries};
use super::MlaWeights;
use crate::config::MlaConfig;
use crate::Result;

/// Expanded-form attention of one sequence chunk; writes `len × H × v` into `att`.
#[allow(clippy::too_many_arguments)]
pub(super) fn attend(
    w: &MlaWeights,
    m: &MlaConfig,
    hn: usize,
    scale: f32,
    cache: &PagedLatent,
    block_table: &[u32],
    qs: &Queries<'_>,
    att: &mut [f32],
) -> Result<()> {
    let Some(&max_pos) = qs.positions.iter().max() else {
        return Ok(());
    };
    let (nope, rd, r, vd) = (
        m.qk_nope_head_dim,
        m.qk_rope_head_dim,
        m.kv_lora_rank,
        m.v_head_dim,
    );
    let (qk, wid, t_n) = (nope + rd, m.latent_width(), max_pos + 1);
    let mut rows = vec![0.0; t_n * wid];
    for (t, row) in rows.chunks_exact_mut(wid).enumerate() {
        cache.read(block_table, t, row)?;
    }
    let mut c = vec![0.0; t_n * r];
    strided_copy(&rows, (wid, 0), &mut c, (r, 0), r);
    let mut kpe = vec![0.0; t_n * rd];
    strided_copy(&rows, (wid, r), &mut kpe, (rd, 0), rd);
    let mut keys = vec![0.0; t_n * nope];
    let mut vals = vec![0.0; t_n * vd];
    for h in 0..hn {
        matmul::matmul(&w.k_up[h], &c, t_n, &mut keys)?;
        matmul::matmul(&w.v_b[h], &c, t_n, &mut vals)?;
        let (keys, vals, kpe) = (&keys, &vals, &kpe);
        att.par_chunks_exact_mut(hn * vd)
            .zip(qs.q.par_chunks_exact(hn * qk))
            .zip(qs.pe.par_chunks_exact(hn * rd))
            .zip(qs.positions.par_iter())
            .for_each(|(((o, q), pe), &p)| {
                let (qn, qp) = (&q[h * qk..h * qk + nope], &pe[h * rd..(h + 1) * rd]);
                let scores: Vec<f32> = (0..=p)
                    .map(|t| {
                        let a: f32 = qn.iter().zip(&keys[t * nope..]).map(|(x, y)| x * y).sum();
                        let b: f32 = qp.iter().zip(&kpe[t * rd..]).map(|(x, y)| x * y).sum();
                        scale * (a + b)
                    })
                    .collect();
                let mx = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let inv = 1.0 / e.iter().sum::<f32>();
                let oh = &mut o[h * vd..(h + 1) * vd];
                oh.iter_mut().for_each(|x| *x = 0.0);
                for (t, &et) in e.iter().enumerate() {
                    let pt = et * inv;
                    for (x, &v) in oh.iter_mut().zip(&vals[t * vd..(t + 1) * vd]) {
                        *x += pt * v;
                    }
                }
            });
    }
    Ok(())
}
