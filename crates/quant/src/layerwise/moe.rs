//! The MLP half of the calibration forward: a dense SwiGLU/GeGLU MLP, and a mixture of
//! experts whose routed experts see exactly the tokens routed to them (each expert's inputs
//! captured at its own site, so its Hessian comes from its own tokens) while the shared
//! expert sees the full batch.

use marlin_cpu::ops;
use marlin_models::blocks::router::route;
use marlin_models::blocks::MoeWeights;
use marlin_models::config::Activation;

use super::forward::{linear, Ctx, Site};
use crate::{Error, Result};

/// `down(act(gate x) ⊙ up x)` through the matrices under `prefix`; the input is captured at
/// `MlpIn` unless it was already (`shared`: the shared expert, down input at `SharedDown`).
pub(super) fn mlp(
    c: &mut Ctx<'_, '_>,
    prefix: &str,
    xn: &[f32],
    act: Activation,
    shared: bool,
) -> Result<Vec<f32>> {
    if !shared {
        c.capture(Site::MlpIn, xn, c.n)?;
    }
    let mut g = c.linear(&format!("{prefix}.gate_proj"), xn)?;
    let u = c.linear(&format!("{prefix}.up_proj"), xn)?;
    match act {
        Activation::Silu => ops::silu_mul(&mut g, &u),
        Activation::GeluTanh => ops::gelu_tanh_mul(&mut g, &u),
    }
    let site = if shared {
        Site::SharedDown
    } else {
        Site::MlpDown
    };
    c.capture(site, &g, c.n)?;
    c.linear(&format!("{prefix}.down_proj"), &g)
}

/// The MoE MLP of the normed `xn`: routed with the model's own (F32) router and correction
/// bias, exactly as the engine routes.
pub(super) fn moe(c: &mut Ctx<'_, '_>, w: &MoeWeights, xn: &[f32]) -> Result<Vec<f32>> {
    let cfg = c
        .model
        .config
        .moe
        .as_ref()
        .ok_or_else(|| Error::Invalid("MoE layer without a MoE config".into()))?;
    let d = c.model.config.hidden;
    let e_n = w.experts.len();
    c.capture(Site::MlpIn, xn, c.n)?;
    let logits = linear(&w.router, None, xn)?;
    let mut assigned: Vec<Vec<(usize, f32)>> = vec![Vec::new(); e_n];
    for (t, row) in logits.chunks_exact(e_n.max(1)).enumerate() {
        for (e, wt) in route(cfg, row, w.correction_bias.as_deref()) {
            if let Some(a) = assigned.get_mut(e) {
                a.push((t, wt));
            }
        }
    }
    let mut out = match &w.shared {
        Some(_) => mlp(c, "mlp.shared_experts", xn, Activation::Silu, true)?,
        None => vec![0f32; xn.len()],
    };
    for (e, tokens) in assigned.iter().enumerate() {
        // An expert no token reached still reports an empty capture (its count is zero).
        let mut xs = Vec::with_capacity(tokens.len() * d);
        for &(t, _) in tokens {
            xs.extend_from_slice(&xn[t * d..(t + 1) * d]);
        }
        c.capture(Site::ExpertIn(e), &xs, tokens.len())?;
        if tokens.is_empty() {
            continue;
        }
        let p = format!("mlp.experts.{e}");
        let mut g = c.linear(&format!("{p}.gate_proj"), &xs)?;
        let u = c.linear(&format!("{p}.up_proj"), &xs)?;
        ops::silu_mul(&mut g, &u);
        c.capture(Site::ExpertDown(e), &g, tokens.len())?;
        let y = c.linear(&format!("{p}.down_proj"), &g)?;
        for (&(t, wt), yr) in tokens.iter().zip(y.chunks_exact(d)) {
            for (o, &v) in out[t * d..(t + 1) * d].iter_mut().zip(yr) {
                *o += wt * v;
            }
        }
    }
    Ok(out)
}
