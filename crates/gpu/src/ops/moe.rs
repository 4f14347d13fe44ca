//! Mixture-of-experts launchers: routing (`moe_route`) and the weighted combine
//! (`moe_combine`, or folded into the down experts' GEMV); the expert GEMV itself is in
//! `moe_gemv.rs`. A MoE MLP is a fixed number of dispatches whatever `top_k` is: no
//! per-expert dispatch.

use super::moe_gemv::moe_gemv_variant;
use super::{dispatch_op, grid, to_u32, wg, Span};
use crate::op::Op;
use crate::registry::KernelKey;
use crate::{Error, GpuContext, GpuWeight, Result, StepEncoder};

/// Experts the routing kernel handles (`MAX_E` in moe_route.wgsl).
pub const MOE_MAX_EXPERTS: usize = 256;
/// Slots per token the routing kernel handles.
pub const MOE_MAX_TOP_K: usize = 16;
/// Expert groups the routing kernel handles.
pub const MOE_MAX_GROUPS: usize = 32;

/// How a token's router logits become expert ids and weights.
#[derive(Debug, Clone, Copy)]
pub struct MoeRouting {
    pub n_experts: usize,
    pub top_k: usize,
    /// Sigmoid scores (GLM / DeepSeek-V3); softmax otherwise.
    pub sigmoid: bool,
    /// Renormalise the picked weights to sum 1.
    pub normalize: bool,
    /// Expert groups (1 = no group limit) and how many groups a token may use.
    pub n_group: usize,
    pub topk_group: usize,
    /// Multiplies every routed weight.
    pub scale: f32,
    /// A shared expert stacked after the routed ones (index `n_experts`): every token gets
    /// one more slot, that expert at weight 1, so it runs in the routed experts' kernels.
    pub shared_slot: bool,
}

impl MoeRouting {
    /// Slots per token: `top_k`, plus the shared expert's.
    pub fn slots_per_token(&self) -> usize {
        self.top_k + usize::from(self.shared_slot)
    }
}

/// Record routing of `n_tokens` tokens: `logits` (`n_tokens × n_experts`), the optional
/// correction `bias` (`n_experts`, selection only) → `ids` (u32) and `weights` (f32), both
/// `n_tokens × S`, slot `t · S + j` (S = [`MoeRouting::slots_per_token`]).
pub fn record_moe_route(
    enc: &mut StepEncoder<'_>,
    r: &MoeRouting,
    n_tokens: usize,
    logits: &wgpu::Buffer,
    bias: Option<Span<'_>>,
    ids: &wgpu::Buffer,
    weights: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "moe_route";
    let groups_ok = r.n_group >= 1
        && r.n_group <= MOE_MAX_GROUPS
        && r.n_experts.is_multiple_of(r.n_group)
        && r.topk_group >= 1;
    if n_tokens == 0
        || r.n_experts == 0
        || r.n_experts > MOE_MAX_EXPERTS
        || r.top_k == 0
        || r.top_k > r.n_experts
        || r.slots_per_token() > MOE_MAX_TOP_K
        || !groups_ok
    {
        return Err(Error::shape(
            OP,
            format!(
                "{n_tokens} tokens, {} experts (≤ {MOE_MAX_EXPERTS}), top {} (≤ {MOE_MAX_TOP_K}), \
                 {} groups (≤ {MOE_MAX_GROUPS}, dividing the experts)",
                r.n_experts, r.top_k, r.n_group
            ),
        ));
    }
    Span::whole(logits).check(OP, "logits", n_tokens * r.n_experts)?;
    let slots = n_tokens * r.slots_per_token();
    Span::whole(ids).check(OP, "ids", slots)?;
    Span::whole(weights).check(OP, "weights", slots)?;
    let (bias_buf, bias_off) = match bias {
        Some(b) => (b.buffer, b.check(OP, "bias", r.n_experts)?),
        None => (logits, 0),
    };
    let flags = u32::from(r.sigmoid)
        | u32::from(r.normalize) << 1
        | u32::from(bias.is_some()) << 2
        | u32::from(r.shared_slot) << 3;
    let params = [
        to_u32(OP, "n_tokens", n_tokens)?,
        r.n_experts as u32,
        r.top_k as u32,
        flags,
        r.n_group as u32,
        r.topk_group.min(r.n_group) as u32,
        r.scale.to_bits(),
        bias_off,
    ];
    // One workgroup per token.
    let per = wg(Op::MoeRoute);
    let groups = grid(enc, OP, n_tokens * per as usize, per)?;
    dispatch_op(
        enc,
        Op::MoeRoute,
        params,
        &[logits, bias_buf, ids, weights],
        groups,
    )
}

/// Where `moe_gemv_silu_combine` sums the slots of each token.
#[derive(Debug, Clone, Copy)]
pub struct MoeCombineOut<'a> {
    /// Routing weight of every slot (f32).
    pub wts: &'a wgpu::Buffer,
    /// `tokens × rows_per_expert` floats: overwritten, or added onto with `accumulate`.
    pub out: &'a wgpu::Buffer,
    /// Slots per token (`top_k`, plus a stacked shared expert).
    pub top_k: usize,
    pub accumulate: bool,
}

/// Whether down experts in `w` (plain weights) can run `moe_gemv_silu_combine` on this
/// device (it needs coherent storage), unless `MARLIN_GPU_MOE_COMBINE_FOLD=0`.
pub fn moe_combine_folds(ctx: &GpuContext, w: &GpuWeight) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on =
        *ON.get_or_init(|| std::env::var("MARLIN_GPU_MOE_COMBINE_FOLD").map_or(true, |v| v != "0"));
    let op = Op::MoeGemvSiluCombine;
    let key = KernelKey {
        op,
        format: w.format,
        variant: moe_gemv_variant(ctx, op, w),
    };
    on && w.trellis.is_none() && w.hadamard == 0 && ctx.runs(key)
}

/// Record `out[t] (+)= Σ_j weights[t·k + j] · y[t·k + j]` for `n_tokens` rows of `width`
/// (`k = top_k`, `y` slot-major with rows `width` apart); adds onto `out` when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn record_moe_combine(
    enc: &mut StepEncoder<'_>,
    y: &wgpu::Buffer,
    weights: &wgpu::Buffer,
    out: &wgpu::Buffer,
    n_tokens: usize,
    width: usize,
    top_k: usize,
    accumulate: bool,
) -> Result<()> {
    const OP: &str = "moe_combine";
    if n_tokens == 0 || width == 0 || top_k == 0 {
        return Err(Error::shape(
            OP,
            format!("{n_tokens} tokens, width {width}, top {top_k}"),
        ));
    }
    Span::whole(y).check(OP, "y", n_tokens * top_k * width)?;
    Span::whole(weights).check(OP, "weights", n_tokens * top_k)?;
    Span::whole(out).check(OP, "out", n_tokens * width)?;
    let params = [
        to_u32(OP, "n_tokens", n_tokens)?,
        to_u32(OP, "width", width)?,
        top_k as u32,
        width as u32,
        u32::from(accumulate),
        0,
        0,
        0,
    ];
    let groups = grid(enc, OP, n_tokens * width, wg(Op::MoeCombine))?;
    dispatch_op(enc, Op::MoeCombine, params, &[y, weights, out], groups)
}
