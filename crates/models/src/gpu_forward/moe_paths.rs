//! Which path a MoE MLP's experts take on the GPU, and the grouped one: steps of
//! [`MOE_GROUPED_MIN_TOKENS`](super::moe::MOE_GROUPED_MIN_TOKENS) tokens or more (prefill)
//! group their slots by expert (`moe_sort`, then `moe_gemm` on the tensor cores or
//! `moe_gemv_multi`, which decode each expert's rows once per chunk of its slots); trellis
//! experts group their rows by matrix inside `record_moe_experts_grouped`; shorter steps of
//! SiLU-gated trellis experts fuse the sides around the gating (`moe_hadamard_swiglu`).

use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    moe_experts_grouped_runs, moe_experts_swiglu_runs, moe_gemm_variant, record_gate_mul,
    record_gather_rows, record_moe_grouped, record_moe_sort, ExpertSides, GateAct, Op, Span,
    StepEncoder, Variant, HADAMARD_MAX_BLOCK,
};

use super::moe::GpuMoe;
use super::step::Scratch;
use super::GpuModel;
use crate::Result;

impl GpuModel {
    /// Whether `m`'s experts run grouped (`moe_gemv_multi`): plain stacked experts (no
    /// trellis sides, no rotation) whose kernels this device runs.
    pub(super) fn grouped(&self, m: &GpuMoe) -> bool {
        [&m.gate_up, &m.down].iter().all(|e| {
            let key = marlin_gpu::KernelKey {
                op: Op::MoeGemvMulti,
                format: e.w.format,
                variant: Variant::Plain,
            };
            e.sides.is_none()
                && e.w.hadamard == 0
                && e.w.chunks.len() == 1
                && (e.parts * e.mat_rows).is_multiple_of(4)
                && self.ctx.runs(key)
        })
    }

    /// The down experts' sides where `m`'s trellis experts run gate|up's output side, the
    /// SiLU gating and down's input side as one dispatch and down's output side in the
    /// combine of `k` slots per token (`MARLIN_GPU_MOE_SWIGLU=0` keeps the separate passes,
    /// for A/B runs); not in long steps that group the slots.
    pub(super) fn trellis_swiglu<'a>(
        &self,
        m: &'a GpuMoe,
        n: usize,
        k: usize,
    ) -> Option<&'a ExpertSides> {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let on =
            *ON.get_or_init(|| std::env::var("MARLIN_GPU_MOE_SWIGLU").map_or(true, |v| v != "0"));
        let long = n >= self.moe_grouped_min && self.trellis_grouped(m);
        let sides = m.down.sides.as_ref()?;
        (on && !long
            && self.gate_act() == GateAct::Silu
            && moe_experts_swiglu_runs(&m.gate_up, &m.down)
            && k * sides.had_n <= HADAMARD_MAX_BLOCK)
            .then_some(sides)
    }

    /// Whether `m`'s experts are trellis ones that run grouped by matrix
    /// ([`record_moe_experts_grouped`]) on this device.
    pub(super) fn trellis_grouped(&self, m: &GpuMoe) -> bool {
        [&m.gate_up, &m.down]
            .iter()
            .all(|e| moe_experts_grouped_runs(&self.ctx, e))
    }

    /// The experts of `m` over `n × k` slots grouped by expert: x rows gathered in grouped
    /// order, gate|up and down on `moe_gemm` (tensor cores, where the device has them and
    /// experts average enough slots) or `moe_gemv_multi`, the outputs gathered back into
    /// `y` (slot order).
    pub(super) fn grouped_experts(
        &self,
        enc: &mut StepEncoder<'_>,
        m: &GpuMoe,
        s: &Scratch,
        (n, k): (usize, usize),
        ids: &Buffer,
        y: &Buffer,
    ) -> Result<()> {
        let (d, f, slots) = (self.config.hidden, m.ffn, n * k);
        let bytes = |floats: usize| (floats * 4) as u64;
        let gemm = moe_gemm_variant(&self.ctx, &[&m.gate_up, &m.down], slots);
        let g = record_moe_sort(enc, ids, (slots, m.gate_up.n_experts, k), gemm)?;
        let xg = enc.scratch(bytes(slots * d));
        let xrows = Span::new(&g.table, g.xrow_off);
        record_gather_rows(
            enc,
            Span::whole(&s.xn),
            n,
            d,
            xrows,
            Span::whole(&xg),
            slots,
        )?;
        let gu = enc.scratch(bytes(slots * 2 * f));
        record_moe_grouped(enc, &m.gate_up, &g, &xg, &gu)?;
        let act = enc.scratch(bytes(slots * f));
        let (src, dst) = (Span::whole(&gu), Span::whole(&act));
        record_gate_mul(enc, self.gate_act(), src, dst, slots, f, 2 * f)?;
        let yg = enc.scratch(bytes(slots * d));
        record_moe_grouped(enc, &m.down, &g, &act, &yg)?;
        let places = Span::new(&g.table, g.inv_off);
        record_gather_rows(
            enc,
            Span::whole(&yg),
            slots,
            d,
            places,
            Span::whole(y),
            slots,
        )?;
        Ok(())
    }
}
