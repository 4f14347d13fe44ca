//! The mixture-of-experts MLP on the CPU: route every token, group the tokens by expert
//! (one GEMM per used expert over its tokens), scatter the weighted outputs back, add the
//! shared expert.

use marlin_core::QTensor;
use marlin_cpu::{matmul, ops};

use super::config::MoeConfig;
use super::forward::linear;
use super::router::route;
use super::{Expert, Mlp, MoeWeights};
use crate::{Error, Result};

/// Token tile of the CPU GEMM kernels.
const TILE: usize = 4;

/// `out = down(silu(gate x) ⊙ up x)` for `n` rows of `x`.
pub(super) fn mlp(m: &Mlp, x: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
    let f = m.gate.out_features();
    let (mut g, mut u) = (vec![0.0; n * f], vec![0.0; n * f]);
    linear(&m.gate, x, n, &mut g)?;
    linear(&m.up, x, n, &mut u)?;
    ops::silu_mul(&mut g, &u);
    linear(&m.down, &g, n, out)
}

fn expert(e: &Expert, x: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
    let f = e.gate.rows();
    let (mut g, mut u) = (vec![0.0; n * f], vec![0.0; n * f]);
    matmul::matmul(&e.gate, x, n, &mut g)?;
    matmul::matmul(&e.up, x, n, &mut u)?;
    ops::silu_mul(&mut g, &u);
    matmul::matmul(&e.down, &g, n, out)?;
    Ok(())
}

/// Router logits in f32 for `n` tokens.
fn router_logits(router: &QTensor, x: &[f32], n: usize) -> Result<Vec<f32>> {
    let mut logits = vec![0.0; n * router.rows()];
    matmul::matmul(router, x, n, &mut logits)?;
    Ok(logits)
}

/// The MoE MLP of `n` tokens `x` (`n × d`) into `out` (`n × d`, overwritten).
pub(super) fn moe(
    cfg: &MoeConfig,
    w: &MoeWeights,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) -> Result<()> {
    let d = x.len() / n.max(1);
    let e_n = w.experts.len();
    let bias_ok = w.correction_bias.as_ref().is_none_or(|b| b.len() == e_n);
    if e_n != cfg.n_experts || w.router.rows() != e_n || !bias_ok {
        return Err(Error::Config(format!(
            "MoE weights: {e_n} experts, router of {} rows, config of {}",
            w.router.rows(),
            cfg.n_experts
        )));
    }
    let logits = router_logits(&w.router, x, n)?;
    // Per expert: (token, weight) pairs.
    let mut assigned: Vec<Vec<(usize, f32)>> = vec![Vec::new(); e_n];
    for (t, row) in logits.chunks_exact(e_n).enumerate() {
        for (e, wt) in route(cfg, row, w.correction_bias.as_deref()) {
            assigned[e].push((t, wt));
        }
    }
    match &w.shared {
        Some(s) => mlp(s, x, n, out)?,
        None => out.iter_mut().for_each(|v| *v = 0.0),
    }
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (e, tokens) in assigned.iter().enumerate() {
        if tokens.is_empty() {
            continue;
        }
        // A step of whole 4-token tiles (the engine's batch-invariant mode) pads every expert's
        // group to whole tiles too, so each token takes the tiled GEMM path whatever shares it.
        let m = if n.is_multiple_of(TILE) {
            tokens.len().next_multiple_of(TILE)
        } else {
            tokens.len()
        };
        xs.clear();
        for &(t, _) in tokens {
            xs.extend_from_slice(&x[t * d..(t + 1) * d]);
        }
        xs.resize(m * d, 0.0);
        ys.clear();
        ys.resize(m * d, 0.0);
        expert(&w.experts[e], &xs, m, &mut ys)?;
        for (&(t, wt), y) in tokens.iter().zip(ys.chunks_exact(d)) {
            for (o, &v) in out[t * d..(t + 1) * d].iter_mut().zip(y) {
                *o += wt * v;
            }
        }
    }
    Ok(())
}
