//! Uploading a model's weights: single linears, projections that share an input fused into
//! one matrix when their formats agree (q|k|v, gate|up: one GEMV per token instead of
//! several), and every norm weight and bias packed into one vector buffer.

use marlin_core::QTensor;
use marlin_gpu::{GpuContext, GpuWeight};

use crate::weights::Linear;
use crate::{Error, Result};

/// A linear layer on the GPU: the weight and the float offset of its bias in the vector
/// buffer.
pub(crate) struct GpuLinear {
    pub(crate) w: GpuWeight,
    pub(crate) bias: Option<usize>,
}

/// Linears over one input whose outputs sit side by side in each token's row of `width`
/// floats: one fused weight when the formats and rotations agree, else one weight per linear.
pub(crate) struct GpuProj {
    pub(crate) parts: Vec<GpuWeight>,
    /// Offset of the concatenated biases (zeros for linears without one).
    pub(crate) bias: Option<usize>,
    pub(crate) width: usize,
}

/// Collects vectors into one host array, handing out their offsets.
#[derive(Default)]
pub(crate) struct Vectors(pub(crate) Vec<f32>);

impl Vectors {
    pub(crate) fn push(&mut self, v: &[f32]) -> usize {
        // Offsets stay multiples of 4 floats (16 bytes), like activation rows.
        let at = self.0.len().div_ceil(4) * 4;
        self.0.resize(at, 0.0);
        self.0.extend_from_slice(v);
        at
    }

    pub(crate) fn opt(&mut self, v: &Option<Vec<f32>>) -> Option<usize> {
        v.as_deref().map(|v| self.push(v))
    }
}

fn gpu_err(name: &str, e: marlin_gpu::Error) -> Error {
    Error::Unsupported(format!("GPU upload of {name}: {e}"))
}

pub(crate) fn upload_weight(ctx: &GpuContext, t: &QTensor, name: &str) -> Result<GpuWeight> {
    GpuWeight::upload(ctx, t).map_err(|e| gpu_err(name, e))
}

pub(crate) fn upload_linear(
    ctx: &GpuContext,
    l: &Linear,
    vecs: &mut Vectors,
    name: &str,
) -> Result<GpuLinear> {
    Ok(GpuLinear {
        w: upload_weight(ctx, &l.weight, name)?,
        bias: l.bias.as_deref().map(|b| vecs.push(b)),
    })
}

/// Upload `ls` (same input width) as one projection.
pub(crate) fn upload_proj(
    ctx: &GpuContext,
    ls: &[&Linear],
    vecs: &mut Vectors,
    name: &str,
) -> Result<GpuProj> {
    let first = ls
        .first()
        .ok_or_else(|| Error::Config(format!("{name}: no linears")))?;
    let (format, cols) = (first.weight.format, first.in_features());
    if ls.iter().any(|l| l.in_features() != cols) {
        return Err(Error::Config(format!(
            "{name}: projections of different input widths"
        )));
    }
    let width: usize = ls.iter().map(|l| l.out_features()).sum();
    // Row-wise concatenation fuses formats whose bytes are whole rows and weights rotated
    // alike; trellis tensors carry per-tensor sides (suh, svh) and stay separate.
    let hadamard = first.weight.hadamard();
    let fusable = !format.is_trellis()
        && ls
            .iter()
            .all(|l| l.weight.format == format && l.weight.hadamard() == hadamard);
    let parts = if fusable {
        let mut bytes = Vec::with_capacity(ls.iter().map(|l| l.weight.bytes().len()).sum());
        for l in ls {
            bytes.extend_from_slice(l.weight.bytes());
        }
        let mut w = GpuWeight::from_bytes(ctx, format, width, cols, &bytes, ctx.max_binding())
            .map_err(|e| gpu_err(name, e))?;
        w.hadamard = hadamard;
        vec![w]
    } else {
        ls.iter()
            .map(|l| upload_weight(ctx, &l.weight, name))
            .collect::<Result<_>>()?
    };
    let bias = if ls.iter().any(|l| l.bias.is_some()) {
        let mut b = Vec::with_capacity(width);
        for l in ls {
            match &l.bias {
                Some(v) if v.len() == l.out_features() => b.extend_from_slice(v),
                Some(v) => {
                    return Err(Error::Config(format!(
                        "{name}: bias of {} for {} outputs",
                        v.len(),
                        l.out_features()
                    )))
                }
                None => b.resize(b.len() + l.out_features(), 0.0),
            }
        }
        Some(vecs.push(&b))
    } else {
        None
    };
    Ok(GpuProj { parts, bias, width })
}
