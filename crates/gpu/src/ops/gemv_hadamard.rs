//! Where the trellis tile GEMVs apply the weight's input side themselves
//! (`gemv_hadamard`, `moe_gemv_hadamard`: one dispatch fewer per one-token trellis matmul
//! and per trellis expert projection).

use crate::op::Op;
use crate::registry::{KernelKey, Variant};
use crate::{GpuContext, GpuWeight};

/// Whether the trellis GEMV kernel `op` ([`Op::GemvHadamard`], [`Op::MoeGemvHadamard`])
/// applies the input side of `w` itself on this device: 128-column Hadamard blocks (a
/// block's 8 tiles exchange values by subgroup shuffles, so subgroups of at least 8), the
/// f16 tile kernel, unless `MARLIN_GPU_GEMV_HADAMARD=0` (read once per process).
pub(crate) fn gemv_hadamard_runs(ctx: &GpuContext, op: Op, w: &GpuWeight, had_k: usize) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on =
        *ON.get_or_init(|| std::env::var("MARLIN_GPU_GEMV_HADAMARD").map_or(true, |v| v != "0"));
    let key = KernelKey {
        op,
        format: w.format,
        variant: Variant::F16,
    };
    on && had_k == 128
        && w.cols.is_multiple_of(128)
        && ctx.summary.limits.subgroup_min_size >= 8
        && ctx.matmul_variant(Op::Gemv, w.format) == Variant::F16
        && ctx.runs(key)
}
