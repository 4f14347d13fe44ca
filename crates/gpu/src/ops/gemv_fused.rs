//! Decode GEMVs with a neighbouring op folded in: the RMSNorm before them (`gemv_norm`, and
//! `gemv_norm_out`, which also stores the normed input), the residual add after them
//! (`gemv_add`), RoPE with the KV-cache write after the q|k|v projection
//! (`gemv_norm_rope_kv`), and SwiGLU after the gate|up projection (`gemv_norm_swiglu`).
//! Same kernels and geometry as the GEMV, other input/output hooks
//! (`shaders/gemv/x_norm.wgsl`, `norm_*.wgsl`, `out_*.wgsl`).

use crate::op::Op;
use crate::ops::matmul::{record_matmul_kernel, MatmulIo};
use crate::{Error, GpuWeight, Result, StepEncoder};

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
    /// `gemv_add`: the product is added into `io.out` (the residual stream).
    Add,
    /// `gemv_norm_rope_kv`: as `Norm` on a q|k|v projection, with RoPE of q and k (adjacent
    /// pairs) and the f16 cache write of k and v folded into the output: q goes to
    /// `io.out` (rows `0..qd`), k and v to the caches.
    NormRopeKv {
        norm: &'a wgpu::Buffer,
        rope: &'a RopeKvOut<'a>,
    },
    /// `gemv_norm_swiglu`: as `Norm` on a gate|up projection (gate rows `0..f`, up rows
    /// `f..2f`, one weight chunk), storing `silu(gate) · up` (`f` floats) into `io.out`.
    NormSwiglu(&'a wgpu::Buffer),
}

/// Where [`GemvFuse::NormRopeKv`] puts k and v, and its RoPE rows.
#[derive(Debug, Clone, Copy)]
pub struct RopeKvOut<'a> {
    /// cos ‖ sin rows (f32); the token's row at the word the record names.
    pub cs: &'a wgpu::Buffer,
    /// The step's u32 words: the token's slot, and the rope record at `record`.
    pub words: &'a wgpu::Buffer,
    /// Word index of the record `[qd, kvd, head_dim, half, cs word, slot word]`.
    pub record: usize,
    /// The layer's f16 k and v caches (`kvd` values per slot).
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    /// `qd + 2 kvd`: the weight's rows.
    pub qkv_rows: usize,
}

impl GemvFuse<'_> {
    /// The op of this fusion.
    pub fn op(&self) -> Op {
        match self {
            GemvFuse::Norm(_) => Op::GemvNorm,
            GemvFuse::NormOut { .. } => Op::GemvNormOut,
            GemvFuse::Add => Op::GemvAdd,
            GemvFuse::NormRopeKv { .. } => Op::GemvNormRopeKv,
            GemvFuse::NormSwiglu(_) => Op::GemvNormSwiglu,
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
/// dispatch per weight chunk (decode: the norm or residual add needs no dispatch of its
/// own). Rotated and trellis weights transform x around their kernel, so they are
/// `Error::Unsupported` here: callers keep the separate ops for them.
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
    let cols = w.cols;
    let o = io.out;
    let (extra, n_extra, word2) = match fuse {
        GemvFuse::Norm(b) => {
            need("norm buffer", b, cols + 4)?;
            ([b, b, b, b, b], 1, None)
        }
        GemvFuse::NormOut { norm, xn } => {
            need("norm buffer", norm, cols + 4)?;
            need("normed x", xn, cols)?;
            ([norm, xn, xn, xn, xn], 2, None)
        }
        GemvFuse::Add => ([o, o, o, o, o], 0, None),
        GemvFuse::NormRopeKv { norm, rope } => {
            need("norm buffer", norm, cols + 4)?;
            need("step words", rope.words, rope.record + 6)?;
            // The even row of each pair writes both: a pair never straddles two chunks.
            let even = w.chunks.iter().all(|c| c.rows.start.is_multiple_of(2));
            if w.rows != rope.qkv_rows || !even {
                return Err(Error::shape(
                    op.name(),
                    format!(
                        "{} rows for a q|k|v of {} (chunks starting at even rows)",
                        w.rows, rope.qkv_rows
                    ),
                ));
            }
            let record = u32::try_from(rope.record)
                .map_err(|_| Error::shape(op.name(), "rope record past u32"))?;
            let bufs = [norm, rope.cs, rope.words, rope.k_cache, rope.v_cache];
            (bufs, 5, Some(record))
        }
        GemvFuse::NormSwiglu(b) => {
            need("norm buffer", b, cols + 4)?;
            // A workgroup reads gate row i and up row i: both must be in its binding.
            if !w.rows.is_multiple_of(2) || w.chunks.len() != 1 {
                return Err(Error::shape(
                    op.name(),
                    format!(
                        "a gate|up weight of even rows in one chunk, got {} rows in {} chunks",
                        w.rows,
                        w.chunks.len()
                    ),
                ));
            }
            ([b, b, b, b, b], 1, None)
        }
    };
    let variant = enc.ctx().matmul_variant(Op::Gemv, w.format);
    record_matmul_kernel(enc, w, io, op, variant, &extra[..n_extra], word2)
}
