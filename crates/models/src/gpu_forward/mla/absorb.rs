//! The absorbed query projection: every head's `W_UKᵀ` multiplied into its rows of `q_b` at
//! upload, so a step computes `q̃ = W_UKᵀ q_nope` straight from c_q with one matmul instead
//! of the nope projection and then a per-head GEMV that waits on it.

use marlin_core::{QTensor, QuantFormat};
use marlin_gpu::{GpuContext, GpuWeight};
use rayon::prelude::*;

use crate::{Error, Result};

/// Whether layers with a query bottleneck get the absorbed projection
/// (`MARLIN_GPU_MLA_ABSORB_Q=0` keeps the nope rows and the per-head `W_UKᵀ` GEMV).
pub(super) fn absorb_q_enabled() -> bool {
    std::env::var("MARLIN_GPU_MLA_ABSORB_Q").map_or(true, |v| v != "0")
}

/// Largest absorbed projection, in values: `heads · rank · q_lora`. GLM-4.7-Flash has
/// 20 · 512 · 768 (7.9 M, 15.7 MB in f16 per layer).
const MAX_ABSORBED_VALUES: usize = 1 << 24;

/// `[H·rank, q_lora]`: head j's rows are `k_b[j] (rank × nope) · q_b[j·qk .. j·qk + nope]
/// (nope × q_lora)`. F32 when `q_b` is a float format (unquantized models keep their logits
/// to f32 rounding), else F16 (its rounding lies far below `q_b`'s quantization error). `None` when it would exceed [`MAX_ABSORBED_VALUES`].
pub(super) fn upload_absorbed_q(
    ctx: &GpuContext,
    q_b: &QTensor,
    k_b: &[QTensor],
    (nope, rd): (usize, usize),
    name: &str,
) -> Result<Option<GpuWeight>> {
    let h = k_b.len();
    let q_lora = q_b.cols();
    let qk = nope + rd;
    let Some(rank) = k_b.first().map(|t| t.rows()) else {
        return Ok(None);
    };
    if h * rank * q_lora > MAX_ABSORBED_VALUES {
        return Ok(None);
    }
    if q_b.rows() != h * qk || k_b.iter().any(|t| t.rows() != rank || t.cols() != nope) {
        return Err(Error::Config(format!(
            "{name}: q_b [{}, {q_lora}] and W_UK heads do not match {h} heads of {nope} + {rd}",
            q_b.rows()
        )));
    }
    let q = q_b.to_f32()?;
    let heads = k_b
        .iter()
        .map(|t| t.to_f32())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // Sums in f64: the product is rounded once, to its storage format.
    let mut out = vec![0f32; h * rank * q_lora];
    out.par_chunks_mut(q_lora)
        .enumerate()
        .for_each(|(row, dst)| {
            let (j, i) = (row / rank, row % rank);
            let uk = &heads[j][i * nope..(i + 1) * nope];
            let mut acc = vec![0f64; q_lora];
            for (k, &a) in uk.iter().enumerate() {
                let src = &q[(j * qk + k) * q_lora..(j * qk + k + 1) * q_lora];
                for (d, &s) in acc.iter_mut().zip(src) {
                    *d += f64::from(a) * f64::from(s);
                }
            }
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = a as f32;
            }
        });
    let float = matches!(
        q_b.format,
        QuantFormat::F32 | QuantFormat::F16 | QuantFormat::BF16
    );
    let format = match float {
        true => QuantFormat::F32,
        false => QuantFormat::F16,
    };
    let t = marlin_core::formats::quantize_tensor(format, &[h * rank, q_lora], &out)?;
    GpuWeight::upload(ctx, &t)
        .map(Some)
        .map_err(|e| Error::Unsupported(format!("GPU upload of {name}: {e}")))
}
