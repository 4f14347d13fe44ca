//! A mixture-of-experts MLP on the GPU: every expert's gate|up and down stacked into one
//! weight each ([`GpuExperts`]), so a step runs router GEMV → `moe_route` → gate|up
//! `moe_gemv` over all token slots → down `moe_gemv_silu` (the SiLU gating folded into its
//! input) → `moe_combine`: a fixed number of dispatches whatever `top_k` is. Fused decode
//! steps can also fold the MLP norm into the router and gate|up GEMVs (`gemv_norm`,
//! `moe_gemv_norm`; opt-in, see fused.rs). A shared expert of the routed experts' shape and formats is also
//! stacked after them and runs as one more slot in one-token steps; longer steps (and any
//! other shared expert) run it as a dense MLP before the combine. Trellis experts add a
//! `moe_hadamard_scale` around the expert GEMVs (every matrix has its own suh/svh); with
//! SiLU gating the middle ones and the gating are one `moe_hadamard_swiglu` and down's output
//! side runs in the combine (`moe_hadamard_combine`); rotated experts add a `hadamard` of the
//! GEMV input. Steps of [`MOE_GROUPED_MIN_TOKENS`] tokens or more (prefill) group their slots
//! by expert instead (moe_paths.rs).

use marlin_core::QTensor;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    moe_combine_folds, record_gate_mul, record_gemv_fused, record_matmul, record_moe_combine,
    record_moe_experts, record_moe_experts_grouped, record_moe_experts_swiglu,
    record_moe_gemv_fused, record_moe_hadamard_combine, record_moe_route, GateAct, GemvFuse,
    GpuContext, GpuExperts, GpuWeight, MatmulIo, MoeCombineIo, MoeCombineOut, MoeExpertsIo,
    MoeFuse, MoeGemvIo, MoeRouting, Span, StepEncoder,
};

use super::step::Scratch;
use super::upload::{upload_linear, upload_proj, upload_weight, GpuLinear, GpuProj, Vectors};
use super::GpuModel;
use crate::blocks::config::{MoeConfig, Scoring};
use crate::blocks::MoeWeights;
use crate::{Error, Result};

/// The step size from which grouping MoE slots by expert is meant to run (below it, a
/// slot per expert chunk is about as cheap as a slot per GEMV).
pub const MOE_GROUPED_MIN_TOKENS: usize = 16;

/// Steps of this many tokens or more group their MoE slots by expert:
/// [`MOE_GROUPED_MIN_TOKENS`], or `MARLIN_GPU_MOE_GROUPED_MIN=N` (0: never). On an H200,
/// GLM-4.7-Flash q4_0 prefills 512 tokens at 1,248 tok/s grouped against 851 per slot, and
/// decodes at the same speed after grouped prefills (run "CA").
pub(crate) fn default_grouped_min() -> usize {
    match std::env::var("MARLIN_GPU_MOE_GROUPED_MIN").map(|v| v.parse::<usize>()) {
        Ok(Ok(0)) => usize::MAX,
        Ok(Ok(n)) => n,
        _ => MOE_GROUPED_MIN_TOKENS,
    }
}

/// Where a MoE MLP's input RMSNorm happens.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MoeNorm<'a> {
    /// Before the MLP: its input is in `s.xn`.
    Done,
    /// In the router GEMV (`gemv_norm_out`, the norm weight as `gemv_norm` reads it), which
    /// also stores the normed input into `s.xn` for the experts; the MLP's input is the
    /// residual stream `s.h` (a fused decode step, see [`GpuMoe::router_plain`]).
    Router(&'a Buffer),
    /// Folded into the router and gate|up GEMVs (`gemv_norm`, `moe_gemv_norm`); the
    /// input is `s.h` (see [`GpuMoe::folds_norm`]).
    Fold(&'a Buffer),
}

/// One MoE layer's weights on the GPU.
pub(crate) struct GpuMoe {
    /// Router `[n_experts, d]` (F32).
    router: GpuWeight,
    /// Float offset of the correction bias in the vector buffer.
    bias: Option<usize>,
    /// Every expert's gate rows then up rows: `[n_experts · 2F, d]`.
    pub(super) gate_up: GpuExperts,
    /// Every expert's down: `[n_experts · d, F]`.
    pub(super) down: GpuExperts,
    /// The shared expert (gate|up, down).
    shared: Option<(GpuProj, GpuLinear)>,
    /// The shared expert is also stacked after the routed experts (index `n_experts`):
    /// one-token steps run it as one more routed slot (3 dispatches fewer per layer);
    /// longer steps keep the dense MLP, whose GEMM beats a GEMV per token slot.
    slot: bool,
    routing: MoeRouting,
    /// Inner size F of one routed expert.
    pub(super) ffn: usize,
}

/// Upload `mats` (expert-major, `per_expert` each) as one stacked [`GpuExperts`].
fn stack(ctx: &GpuContext, mats: &[&QTensor], per_expert: usize, name: &str) -> Result<GpuExperts> {
    GpuExperts::upload(ctx, mats, per_expert)
        .map_err(|e| Error::Unsupported(format!("GPU MoE {name}: {e}")))
}

impl GpuMoe {
    /// Upload layer `l`'s experts, router and shared expert.
    pub(crate) fn upload(
        ctx: &GpuContext,
        cfg: &MoeConfig,
        w: &MoeWeights,
        vecs: &mut Vectors,
        l: usize,
    ) -> Result<GpuMoe> {
        let name = |s: &str| format!("blk.{l}.{s}");
        let e_n = w.experts.len();
        if e_n != cfg.n_experts || w.router.rows() != e_n {
            return Err(Error::Config(format!(
                "layer {l}: {e_n} experts, router of {} rows, config of {}",
                w.router.rows(),
                cfg.n_experts
            )));
        }
        let ffn = w.experts.first().map_or(0, |e| e.gate.rows());
        let hidden = w.router.cols();
        let mut gu = Vec::with_capacity(2 * e_n);
        for e in &w.experts {
            if e.gate.rows() != ffn || e.up.rows() != ffn || e.down.rows() != hidden {
                return Err(Error::Config(format!("layer {l}: experts of mixed shapes")));
            }
            gu.extend([&e.gate, &e.up]);
        }
        let mut downs: Vec<&QTensor> = w.experts.iter().map(|e| &e.down).collect();
        // A shared expert of the routed experts' shapes, formats and rotations is stacked
        // with them too (`MARLIN_GPU_MOE_SHARED_SLOT=0`: never, for A/B runs).
        let slot_on = std::env::var("MARLIN_GPU_MOE_SHARED_SLOT").map_or(true, |v| v != "0");
        let slot = w.shared.as_ref().filter(|m| {
            let no_bias = [&m.gate, &m.up, &m.down].iter().all(|l| l.bias.is_none());
            slot_on
                && no_bias
                && w.experts.first().is_some_and(|e| {
                    [(&m.gate, &e.gate), (&m.up, &e.up), (&m.down, &e.down)]
                        .iter()
                        .all(|(a, b)| {
                            let a = &a.weight;
                            a.format == b.format
                                && a.shape == b.shape
                                && a.hadamard() == b.hadamard()
                        })
                })
        });
        if let Some(m) = slot {
            gu.extend([&m.gate.weight, &m.up.weight]);
            downs.push(&m.down.weight);
        }
        let shared = match w.shared.as_ref() {
            Some(m) => Some((
                upload_proj(ctx, &[&m.gate, &m.up], vecs, &name("ffn_gate_up_shexp"))?,
                upload_linear(ctx, &m.down, vecs, &name("ffn_down_shexp"))?,
            )),
            None => None,
        };
        Ok(GpuMoe {
            router: upload_weight(ctx, &w.router, &name("ffn_gate_inp"))?,
            bias: w.correction_bias.as_deref().map(|b| vecs.push(b)),
            gate_up: stack(ctx, &gu, 2, &name("ffn_gate_up_exps"))?,
            down: stack(ctx, &downs, 1, &name("ffn_down_exps"))?,
            shared,
            slot: slot.is_some(),
            routing: MoeRouting {
                n_experts: e_n,
                top_k: cfg.top_k,
                sigmoid: cfg.scoring == Scoring::Sigmoid,
                normalize: cfg.norm_topk_prob,
                n_group: cfg.n_group.max(1),
                topk_group: cfg.topk_group.max(1),
                scale: cfg.routed_scale,
                shared_slot: false,
            },
            ffn,
        })
    }

    /// Whether a fused decode step can fold the MLP norm into the router and gate|up
    /// GEMVs (`gemv_norm`, `moe_gemv_norm`): plain router and gate|up weights, no dense
    /// shared expert.
    pub(crate) fn folds_norm(&self) -> bool {
        let plain = |w: &GpuWeight| w.trellis.is_none() && w.hadamard == 0;
        !self.decode_has_dense_shared()
            && self.gate_up.sides.is_none()
            && plain(&self.gate_up.w)
            && plain(&self.router)
            && self.router.cols.is_multiple_of(4)
    }

    /// Whether a fused decode step can run the MLP norm in the router GEMV
    /// ([`MoeNorm::Router`]): a plain router, no dense shared expert.
    pub(crate) fn router_plain(&self) -> bool {
        let r = &self.router;
        !self.decode_has_dense_shared()
            && r.trellis.is_none()
            && r.hadamard == 0
            && r.cols.is_multiple_of(4)
    }

    /// Whether a one-token step runs a dense shared expert beside the routed slots.
    pub(crate) fn decode_has_dense_shared(&self) -> bool {
        self.shared.is_some() && !self.slot
    }

    /// Every weight matrix (router, stacked experts, shared expert).
    pub(crate) fn weights(&self) -> impl Iterator<Item = &GpuWeight> {
        let shared = self
            .shared
            .iter()
            .flat_map(|(gu, d)| gu.parts.iter().chain([&d.w]));
        [&self.router, &self.gate_up.w, &self.down.w]
            .into_iter()
            .chain(shared)
    }
}

impl GpuModel {
    /// Record the MoE MLP `m` over `n` tokens: `s.xn` in (or `s.h`, see [`MoeNorm`]),
    /// `out` written (`add`: added into, for a fused decode step adding straight into the
    /// residual stream; needs no dense shared expert, which writes `out` first).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_moe(
        &self,
        enc: &mut StepEncoder<'_>,
        m: &GpuMoe,
        s: &Scratch,
        n: usize,
        out: &Buffer,
        add: bool,
        norm: MoeNorm<'_>,
    ) -> Result<()> {
        let slot = m.slot && n == 1;
        let dense_shared = m.shared.as_ref().filter(|_| !slot);
        let fold = matches!(norm, MoeNorm::Fold(_));
        if (add || !matches!(norm, MoeNorm::Done)) && dense_shared.is_some() {
            return Err(Error::Unsupported(
                "MoE added into its output or with its norm folded, with a dense shared expert"
                    .into(),
            ));
        }
        let r = &MoeRouting {
            shared_slot: slot,
            ..m.routing
        };
        let (d, f, k) = (self.config.hidden, m.ffn, r.slots_per_token());
        let slots = n * k;
        let bytes = |floats: usize| (floats * 4) as u64;
        let logits = enc.scratch(bytes(n * r.n_experts));
        let router_io = |x| MatmulIo::new(x, &logits, n);
        match norm {
            MoeNorm::Done => record_matmul(enc, &m.router, &router_io(&s.xn))?,
            MoeNorm::Router(nb) => {
                let fuse = GemvFuse::NormOut {
                    norm: nb,
                    xn: &s.xn,
                };
                record_gemv_fused(enc, &m.router, &router_io(&s.h), fuse)?;
            }
            MoeNorm::Fold(nb) => {
                record_gemv_fused(enc, &m.router, &router_io(&s.h), GemvFuse::Norm(nb))?
            }
        }
        // The experts' input: the residual stream where they fold the norm in.
        let x = if fold { &s.h } else { &s.xn };
        let (ids, wts) = (enc.scratch(bytes(slots)), enc.scratch(bytes(slots)));
        let bias = m.bias.map(|b| Span::new(&self.vectors, b));
        record_moe_route(enc, r, n, &logits, bias, &ids, &wts)?;
        let y = enc.scratch(bytes(slots * d));
        let long = n >= self.moe_grouped_min;
        // Set where y holds the down experts' products on Q, whose output side the combine
        // applies.
        let mut down_sides = None;
        // Set where the down GEMV sums the slots into `out` itself (moe_gemv_silu_combine).
        let mut combined = false;
        if !fold && long && self.grouped(m) {
            self.grouped_experts(enc, m, s, (n, k), &ids, &y)?;
        } else if let Some(sides) = self.trellis_swiglu(m, n, k).filter(|_| !fold) {
            let io = MoeExpertsIo {
                x,
                x_per_slot: k,
                ids: &ids,
                out: &y,
                slots,
            };
            record_moe_experts_swiglu(enc, &m.gate_up, &m.down, &io)?;
            down_sides = Some(sides);
        } else {
            // Trellis experts group their own slots (by matrix) in long steps.
            let experts = match long && self.trellis_grouped(m) {
                true => record_moe_experts_grouped,
                false => record_moe_experts,
            };
            let gu = enc.scratch(bytes(slots * 2 * f));
            let io = MoeExpertsIo {
                x,
                x_per_slot: k,
                ids: &ids,
                out: &gu,
                slots,
            };
            match norm {
                MoeNorm::Fold(nb) => {
                    let gemv = io.gemv(m.gate_up.mat_rows);
                    record_moe_gemv_fused(enc, &m.gate_up.w, &gemv, MoeFuse::Norm(nb))?;
                }
                _ => experts(enc, &m.gate_up, &io)?,
            }
            if self.down_folds_silu(m) {
                let io = MoeGemvIo {
                    x: &gu,
                    x_per_slot: 1,
                    ids: &ids,
                    out: &y,
                    slots,
                    rows_per_expert: m.down.mat_rows,
                };
                // The dense shared expert writes `out` before the combine: not folded then.
                combined = dense_shared.is_none() && moe_combine_folds(&self.ctx, &m.down.w);
                let fuse = match combined {
                    true => MoeFuse::SiluCombine(MoeCombineOut {
                        wts: &wts,
                        out,
                        top_k: k,
                        accumulate: add,
                    }),
                    false => MoeFuse::Silu,
                };
                record_moe_gemv_fused(enc, &m.down.w, &io, fuse)?;
            } else {
                let act = enc.scratch(bytes(slots * f));
                let act_kind = self.gate_act();
                let (src, dst) = (Span::whole(&gu), Span::whole(&act));
                record_gate_mul(enc, act_kind, src, dst, slots, f, 2 * f)?;
                let io = MoeExpertsIo {
                    x: &act,
                    x_per_slot: 1,
                    ids: &ids,
                    out: &y,
                    slots,
                };
                experts(enc, &m.down, &io)?;
            }
        }
        if let Some((sgu, sdown)) = dense_shared {
            self.dense_mlp(enc, sgu, sdown, &s.xn, out, n, None)?;
        }
        let accumulate = add || dense_shared.is_some();
        match down_sides {
            Some(sides) => {
                let io = MoeCombineIo {
                    y: &y,
                    svh: &sides.svh,
                    ids: &ids,
                    wts: &wts,
                    out,
                    n_tokens: n,
                    width: d,
                    top_k: k,
                    mats: m.down.n_experts,
                    block: sides.had_n,
                    accumulate,
                };
                record_moe_hadamard_combine(enc, &io)?;
            }
            None if combined => {}
            None => record_moe_combine(enc, &y, &wts, out, n, d, k, accumulate)?,
        }
        Ok(())
    }

    /// Whether the down GEMV of `m` reads `silu(gate) · up` straight from the gate|up rows
    /// (`moe_gemv_silu`): SiLU gating and plain down experts (`MARLIN_GPU_MOE_FOLD_SILU=0`
    /// keeps the `silu_mul` dispatch, for A/B runs).
    fn down_folds_silu(&self, m: &GpuMoe) -> bool {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let on = *ON
            .get_or_init(|| std::env::var("MARLIN_GPU_MOE_FOLD_SILU").map_or(true, |v| v != "0"));
        on && self.gate_act() == GateAct::Silu && m.down.sides.is_none() && m.down.w.hadamard == 0
    }
}
