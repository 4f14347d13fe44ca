//! Decode GEMVs with a neighbouring op folded in: the RMSNorm before them (`gemv_norm`,
//! `gemv_norm_out`), the residual add after them (`gemv_add`), and the previous layer's MoE
//! combine (`gemv_norm_moe`, `gemv_add_moe`). Same kernels and geometry as the GEMV, other
//! input/output hooks (`shaders/gemv/x_norm.wgsl`, `res_*.wgsl`, `norm_*.wgsl`, `out_*.wgsl`).

use crate::op::Op;
use crate::ops::matmul::{record_matmul_kernel, MatmulIo};
use crate::{Error, GpuWeight, Result, StepEncoder};

/// A MoE MLP's output that no combine dispatch has added into the residual stream yet: the
/// slot outputs (`slots` rows of the stream's width) and the slot weights (one token).
#[derive(Debug, Clone, Copy)]
pub struct MoePending<'a> {
    pub y: &'a wgpu::Buffer,
    pub wts: &'a wgpu::Buffer,
    pub slots: usize,
}

/// How a [`record_gemv_fused`] GEMV folds in its neighbouring op.
#[derive(Debug, Clone, Copy)]
pub enum GemvFuse<'a> {
    /// `gemv_norm`: the input is the residual stream; the kernel multiplies
    /// `rms_norm(x) · w`. The buffer holds the norm weight (`cols` floats) and then its
    /// epsilon at float `cols` (`cols + 4` floats; see [`norm_with_eps`]).
    Norm(&'a wgpu::Buffer),
    /// `gemv_norm_out`: as `Norm`, and `rms_norm(x) · w` is also stored into `xn` (`cols`
    /// floats from offset 0) for the matmuls after it.
    NormOut {
        norm: &'a wgpu::Buffer,
        xn: &'a wgpu::Buffer,
    },
    /// `gemv_norm_moe`: as `Norm`, of the residual stream plus the pending MoE output.
    NormMoe {
        norm: &'a wgpu::Buffer,
        moe: MoePending<'a>,
    },
    /// `gemv_add`: the product is added into `io.out` (the residual stream).
    Add,
    /// `gemv_add_moe`: as `Add`, and the pending MoE output is added too (its combine).
    AddMoe(MoePending<'a>),
}

impl GemvFuse<'_> {
    /// The op of this fusion.
    pub fn op(&self) -> Op {
        match self {
            GemvFuse::Norm(_) => Op::GemvNorm,
            GemvFuse::NormOut { .. } => Op::GemvNormOut,
            GemvFuse::NormMoe { .. } => Op::GemvNormMoe,
            GemvFuse::Add => Op::GemvAdd,
            GemvFuse::AddMoe(_) => Op::GemvAddMoe,
        }
    }
}

/// The buffer contents [`GemvFuse::Norm`] reads: `w`, then `eps`, padded to a vec4.
pub fn norm_with_eps(w: &[f32], eps: f32) -> Vec<f32> {
    let mut v = w.to_vec();
    v.extend([eps, 0.0, 0.0, 0.0]);
    v
}

/// Record one token's `W · rms_norm(x)` or `out += W · x` (see [`GemvFuse`]) as one GEMV
/// dispatch per weight chunk (decode: the norm, residual add or MoE combine needs no
/// dispatch of its own). Rotated and trellis weights transform x around their kernel, so
/// they are `Error::Unsupported` here: callers keep the separate ops for them.
pub fn record_gemv_fused(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MatmulIo<'_>,
    fuse: GemvFuse<'_>,
) -> Result<()> {
    let op = fuse.op();
    if w.trellis.is_some() || w.hadamard > 0 {
        return Err(Error::Unsupported {
            op: op.name(),
            format: w.format.name(),
        });
    }
    if io.n_tokens != 1 || !w.cols.is_multiple_of(4) {
        return Err(Error::shape(
            op.name(),
            format!(
                "one token and cols % 4 == 0, got {} x {}",
                io.n_tokens, w.cols
            ),
        ));
    }
    let need = |what: &str, b: &wgpu::Buffer, floats: usize| {
        let bytes = floats as u64 * 4;
        if b.size() < bytes {
            return Err(Error::shape(
                op.name(),
                format!("{what} holds {} bytes, needs {bytes}", b.size()),
            ));
        }
        Ok(())
    };
    // The MoE output's rows are as wide as the stream: the input's for gemv_norm_moe, the
    // output's (its row stride) for gemv_add_moe.
    let check_moe = |m: &MoePending<'_>, width: usize| {
        if m.slots == 0 {
            return Err(Error::shape(op.name(), "a MoE output of no slots"));
        }
        need("MoE outputs", m.y, m.slots * width)?;
        need("MoE weights", m.wts, m.slots)
    };
    let cols = w.cols;
    let (extra, n_extra, slots) = match fuse {
        GemvFuse::Norm(b) => {
            need("norm buffer", b, cols + 4)?;
            ([b, b, b], 1, None)
        }
        GemvFuse::NormOut { norm, xn } => {
            need("norm buffer", norm, cols + 4)?;
            need("normed x", xn, cols)?;
            ([norm, xn, xn], 2, None)
        }
        GemvFuse::NormMoe { norm, moe } => {
            need("norm buffer", norm, cols + 4)?;
            check_moe(&moe, cols)?;
            ([norm, moe.y, moe.wts], 3, Some(moe.slots))
        }
        GemvFuse::Add => ([io.out, io.out, io.out], 0, None),
        GemvFuse::AddMoe(moe) => {
            check_moe(&moe, io.out_stride.unwrap_or(w.rows))?;
            ([moe.y, moe.wts, moe.wts], 2, Some(moe.slots))
        }
    };
    let variant = enc.ctx().matmul_variant(Op::Gemv, w.format);
    record_matmul_kernel(enc, w, io, op, variant, &extra[..n_extra], slots)
}
