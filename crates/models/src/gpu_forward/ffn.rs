//! A layer's MLP in a GPU step: dense SwiGLU/GeGLU (gate|up in one projection) or a
//! mixture of experts ([`GpuMoe`](super::moe::GpuMoe)). Reads `s.xn`, writes `s.tmp`.

use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{record_gate_mul, GateAct, Span, StepEncoder};

use super::moe::{GpuMoe, MoeNorm};
use super::step::Scratch;
use super::upload::{GpuLinear, GpuProj};
use super::GpuModel;
use crate::config::Activation;
use crate::Result;

/// The MLP half of a GPU layer.
pub(crate) enum GpuFfn {
    /// gate | up in one projection, then down.
    Dense { gu: GpuProj, down: GpuLinear },
    /// Routed experts (+ a shared expert).
    Moe(Box<GpuMoe>),
}

impl GpuFfn {
    /// Every weight matrix of the MLP.
    pub(crate) fn weights(&self) -> Box<dyn Iterator<Item = &marlin_gpu::GpuWeight> + '_> {
        match self {
            GpuFfn::Dense { gu, down } => Box::new(gu.parts.iter().chain([&down.w])),
            GpuFfn::Moe(m) => Box::new(m.weights()),
        }
    }
}

impl GpuModel {
    /// The gated activation of the model's MLPs.
    pub(super) fn gate_act(&self) -> GateAct {
        match self.config.activation {
            Activation::Silu => GateAct::Silu,
            Activation::GeluTanh => GateAct::GeluTanh,
        }
    }

    /// `out = down(act(gate x) · up x)` for `n` tokens of `x`; `gu_buf`/`act_buf` are used
    /// when large enough, else scratch of the step.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dense_mlp(
        &self,
        enc: &mut StepEncoder<'_>,
        gu: &GpuProj,
        down: &GpuLinear,
        x: &Buffer,
        out: &Buffer,
        n: usize,
        bufs: Option<(&Buffer, &Buffer)>,
    ) -> Result<()> {
        let f = gu.width / 2;
        let fits = |b: &Buffer, len: usize| b.size() >= (len * 4) as u64;
        let (g, a) = match bufs {
            Some((g, a)) if fits(g, n * 2 * f) && fits(a, n * f) => (g.clone(), a.clone()),
            _ => (
                enc.scratch((n * 2 * f * 4) as u64),
                enc.scratch((n * f * 4) as u64),
            ),
        };
        self.proj(enc, gu, x, &g, n)?;
        let act = self.gate_act();
        record_gate_mul(enc, act, Span::whole(&g), Span::whole(&a), n, f, 2 * f)?;
        self.linear(enc, down, &a, out, n)
    }

    /// Record the MLP `ffn` over the step's `n` tokens: `s.xn` in, `s.tmp` out.
    pub(super) fn record_ffn(
        &self,
        enc: &mut StepEncoder<'_>,
        ffn: &GpuFfn,
        s: &Scratch,
        n: usize,
    ) -> Result<()> {
        match ffn {
            GpuFfn::Dense { gu, down } => {
                self.dense_mlp(enc, gu, down, &s.xn, &s.tmp, n, Some((&s.gu, &s.act)))
            }
            GpuFfn::Moe(m) => self.record_moe(enc, m, s, n, &s.tmp, false, MoeNorm::Done),
        }
    }
}
