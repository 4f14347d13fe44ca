//! Decode steps (one token) with each RMSNorm folded into the GEMVs that read it
//! (`gemv_norm`) and each residual add folded into the GEMV that produces it (`gemv_add`):
//! a Llama-family layer then records no norm or add dispatch of its own (64 fewer
//! dispatches per token on Llama-3-8B). An MLA layer (with q_lora) folds its attention
//! norm into the latent projection, and the c_q norm into the q GEMVs (so `mla_latent` runs
//! beside them); it adds o_proj and its MLP into the residual stream. A MoE MLP runs its
//! norm in the router GEMV, which also stores the normed input for the experts
//! (`gemv_norm_out`: GLM-4.7-Flash q4_0 decode 154.5 → 168.0 tok/s on an H200, run "DH",
//! with the c_q fold), and its combine adds into the stream. Folding the norm into the
//! gate|up GEMVs too (`moe_gemv_norm`, `MARLIN_GPU_MOE_FOLD_NORM=1`) measured slower.
//! Layers with post-norms (Gemma), biases on o/down, a dense shared expert, and rotated or
//! trellis weights where a fused GEMV would read them keep the separate ops. A dense SwiGLU
//! MLP's gate|up GEMV also applies the activation (`gemv_norm_swiglu`: no `silu_mul`).
//! `MARLIN_GPU_FUSE_NORM=0` turns it off (A/B runs).

use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    norm_with_eps, record_gate_mul, record_gemv_fused, upload_f32, GateAct, GemvFuse, GpuContext,
    GpuWeight, MatmulIo, PooledBuffer, Span, StepEncoder,
};

use super::ffn::GpuFfn;
use super::moe::MoeNorm;
use super::step::Scratch;
use super::upload::{GpuLinear, GpuProj};
use super::{GpuLayer, GpuModel};
use crate::Result;

/// Whether decode steps may fuse norms and adds (`MARLIN_GPU_FUSE_NORM`, default on).
pub(super) fn fuse_enabled() -> bool {
    std::env::var("MARLIN_GPU_FUSE_NORM").map_or(true, |v| v != "0")
}

/// Whether fused decode steps fold a MoE MLP's norm into its router and gate|up GEMVs
/// (`MARLIN_GPU_MOE_FOLD_NORM=1`). Off by default: each of the many small expert
/// workgroups then reads the norm weight beside the input, and GLM-4.7-Flash q4_0 decoded
/// at 161.4 tok/s with the fold against 168.0 with the norm in the router alone (H200,
/// run "DH").
pub(super) fn moe_fold_norm_default() -> bool {
    std::env::var("MARLIN_GPU_MOE_FOLD_NORM").is_ok_and(|v| v == "1")
}

/// Whether fused decode steps fold SwiGLU into the gate|up GEMV (`MARLIN_GPU_SWIGLU_GEMV=0`
/// keeps `silu_mul`).
pub(super) fn swiglu_gemv_default() -> bool {
    std::env::var("MARLIN_GPU_SWIGLU_GEMV").map_or(true, |v| v != "0")
}

/// A layer's norms as `gemv_norm` reads them (weight, then epsilon).
pub(crate) struct FusedNorms {
    attn: PooledBuffer,
    /// The MLP norm, folded into the MLP's first GEMVs: a dense MLP's gate|up, or (when
    /// the model folds MoE norms) a MoE MLP's router and gate|up when they are plain
    /// (`GpuMoe::folds_norm`; else the MoE runs its norm as a dispatch).
    ffn: Option<PooledBuffer>,
}

/// Whether a fused GEMV can read `w`: no trellis, no rotation, whole vec4s per row.
pub(super) fn plain(w: &GpuWeight) -> bool {
    w.trellis.is_none() && w.hadamard == 0 && w.cols.is_multiple_of(4)
}

impl FusedNorms {
    /// The norms of `l` when every op of its decode step can fuse, else `None`.
    pub(crate) fn for_layer(
        ctx: &GpuContext,
        l: &GpuLayer,
        vecs: &[f32],
        hidden: usize,
        eps: f32,
    ) -> Result<Option<FusedNorms>> {
        let ffn_ok = match &l.ffn {
            GpuFfn::Dense { gu, down } => {
                down.bias.is_none() && gu.parts.iter().all(plain) && plain(&down.w)
            }
            GpuFfn::Moe(m) => !m.decode_has_dense_shared(),
        };
        let attn_ok = match &l.mla {
            Some(m) => m.q_lora > 0 && m.a.parts.iter().all(plain),
            None => l.qkv.parts.iter().all(plain),
        };
        let fusable = ffn_ok
            && attn_ok
            && l.post_attn_norm.is_none()
            && l.post_ffn_norm.is_none()
            && l.o.bias.is_none()
            && plain(&l.o.w);
        if !fusable {
            return Ok(None);
        }
        let buf = |at: usize| upload_f32(ctx, &norm_with_eps(&vecs[at..at + hidden], eps));
        Ok(Some(FusedNorms {
            attn: buf(l.attn_norm)?,
            ffn: match &l.ffn {
                GpuFfn::Moe(m) if !m.router_plain() => None,
                _ => Some(buf(l.ffn_norm)?),
            },
        }))
    }
}

impl FusedNorms {
    /// The attention norm as `gemv_norm` reads it.
    pub(super) fn attn(&self) -> &Buffer {
        &self.attn
    }
}

impl GpuModel {
    /// `h += W x` for one token.
    fn linear_add(
        &self,
        enc: &mut StepEncoder<'_>,
        l: &GpuLinear,
        x: &Buffer,
        h: &Buffer,
    ) -> Result<()> {
        record_gemv_fused(enc, &l.w, &MatmulIo::new(x, h, 1), GemvFuse::Add)?;
        Ok(())
    }

    /// The q|k|v projection of the residual stream `s.h` (attention norm folded in).
    pub(super) fn fused_qkv(
        &self,
        enc: &mut StepEncoder<'_>,
        l: &GpuLayer,
        f: &FusedNorms,
        s: &Scratch,
    ) -> Result<()> {
        self.proj_with(enc, &l.qkv, &s.h, &s.qkv, 1, Some(&f.attn))
    }

    /// `h += o(att)`, then the MLP added into `h`: dense, `h += down(act(gate n(h)) ·
    /// up n(h))` (ffn norm folded in); MoE, `n(h)` into `s.xn` by the router GEMV (or
    /// folded into the router and gate|up GEMVs) for the experts, whose combine adds into
    /// `h`.
    pub(super) fn fused_tail(
        &self,
        enc: &mut StepEncoder<'_>,
        l: &GpuLayer,
        f: &FusedNorms,
        att: &Buffer,
        s: &Scratch,
    ) -> Result<()> {
        self.linear_add(enc, &l.o, att, &s.h)?;
        let (gu, down) = match &l.ffn {
            GpuFfn::Dense { gu, down } => (gu, down),
            GpuFfn::Moe(m) => {
                let norm = match f.ffn.as_deref() {
                    Some(b) if self.moe_fold_norm && m.folds_norm() => MoeNorm::Fold(b),
                    Some(b) => MoeNorm::Router(b),
                    None => {
                        let d = self.config.hidden;
                        self.norm(enc, l.ffn_norm, &s.h, &s.xn, 1, d)?;
                        MoeNorm::Done
                    }
                };
                return self.record_moe(enc, m, s, 1, &s.h, true, norm);
            }
        };
        let ffn = gu.width / 2;
        if let (Some(w), Some(norm)) = (self.swiglu_weight(gu), f.ffn.as_deref()) {
            let io = MatmulIo::new(&s.h, &s.act, 1);
            record_gemv_fused(enc, w, &io, GemvFuse::NormSwiglu(norm))?;
            return self.linear_add(enc, down, &s.act, &s.h);
        }
        self.proj_with(enc, gu, &s.h, &s.gu, 1, f.ffn.as_deref())?;
        let act = self.gate_act();
        record_gate_mul(
            enc,
            act,
            Span::whole(&s.gu),
            Span::whole(&s.act),
            1,
            ffn,
            2 * ffn,
        )?;
        self.linear_add(enc, down, &s.act, &s.h)
    }
}

impl GpuModel {
    /// The gate|up weight a fused decode step runs as `gemv_norm_swiglu`: one SiLU-gated
    /// weight without bias, in one chunk.
    fn swiglu_weight<'a>(&self, gu: &'a GpuProj) -> Option<&'a GpuWeight> {
        let silu = matches!(self.gate_act(), GateAct::Silu);
        match gu.parts.as_slice() {
            [w] if self.swiglu_gemv && silu && gu.bias.is_none() && w.chunks.len() == 1 => Some(w),
            _ => None,
        }
    }

    /// Layers whose one-token steps apply SwiGLU in the gate|up GEMV (no `silu_mul`).
    pub fn swiglu_folded_layers(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| match &l.ffn {
                GpuFfn::Dense { gu, .. } => {
                    self.fused_decode && l.fused.is_some() && self.swiglu_weight(gu).is_some()
                }
                GpuFfn::Moe(_) => false,
            })
            .count()
    }
}
