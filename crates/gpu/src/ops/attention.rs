//! `attn_paged` launcher: causal GQA of a batch of query tokens against a paged KV cache
//! (any [`CacheDtype`]: quantized rows are dequantized as the kernel loads them).

use std::sync::OnceLock;

use marlin_core::QuantFormat;

use super::{to_u32, Span};
use crate::op::Op;
use crate::ops::kv::CacheDtype;
use crate::registry::{KernelKey, Variant};
use crate::{Error, Result, StepEncoder};

/// Largest head size the kernel handles (`MAX_HD`).
pub const ATTN_MAX_HEAD_DIM: usize = 256;

/// Most query heads per kv head the [`Variant::Gqa`] kernel serves.
pub const ATTN_GQA_MAX_GROUP: usize = 8;

/// Shape and options of one attention dispatch.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    pub n_tokens: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Floats between consecutive query tokens in `q` (≥ `n_heads · head_dim`).
    pub q_stride: usize,
    pub scale: f32,
    /// Sliding window (keys `t > pos − w`); `None` = full causal.
    pub window: Option<usize>,
    pub dtype: CacheDtype,
}

/// Record attention: query token `j`'s heads start at `q + j · q_stride`; `out` receives
/// `n_tokens × n_heads × head_dim` contiguous floats; `meta` holds 2 words per query token
/// (absolute position, word index in `meta` of its sequence's block table). Every key up
/// to each query's position must be written. Runs the kernel [`attn_paged_variant`] picks.
pub fn record_attention(
    enc: &mut StepEncoder<'_>,
    s: &AttnShape,
    q: Span<'_>,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
    meta: Span<'_>,
    out: Span<'_>,
) -> Result<()> {
    let variant = attn_paged_variant(s);
    record_attention_variant(enc, s, variant, q, k_cache, v_cache, meta, out)
}

/// The `attn_paged` kernel [`record_attention`] runs for `s`: with `MARLIN_GPU_ATTN_GQA=1`,
/// [`Variant::Gqa`] (one workgroup per kv head and token) for 2 or more tokens with 2 to
/// [`ATTN_GQA_MAX_GROUP`] query heads per kv head; else [`Variant::Plain`] (one workgroup per
/// query head and token). Opt-in: serving Llama-3-8B at 32 streams on an H200 (run "AH",
/// contexts under 100 keys) it took 1.88 ms of attention per step against 1.66 ms
/// (dispatch-serialized profile), and 1,825 against 1,836 tok/s.
pub fn attn_paged_variant(s: &AttnShape) -> Variant {
    let group = s.n_heads / s.n_kv_heads.max(1);
    if s.n_tokens >= 2 && (2..=ATTN_GQA_MAX_GROUP).contains(&group) && gqa_enabled() {
        Variant::Gqa
    } else {
        Variant::Plain
    }
}

/// `MARLIN_GPU_ATTN_GQA` is "1"; read once per process.
fn gqa_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("MARLIN_GPU_ATTN_GQA").as_deref() == Ok("1"))
}

/// [`record_attention`] with the kernel chosen by the caller: [`Variant::Plain`] for any
/// shape, [`Variant::Gqa`] for up to [`ATTN_GQA_MAX_GROUP`] query heads per kv head.
#[allow(clippy::too_many_arguments)]
pub fn record_attention_variant(
    enc: &mut StepEncoder<'_>,
    s: &AttnShape,
    variant: Variant,
    q: Span<'_>,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
    meta: Span<'_>,
    out: Span<'_>,
) -> Result<()> {
    const OP: &str = "attn_paged";
    check_shape(s)?;
    let heads = match variant {
        Variant::Plain => s.n_heads,
        Variant::Gqa if s.n_heads / s.n_kv_heads <= ATTN_GQA_MAX_GROUP => s.n_kv_heads,
        _ => {
            return Err(Error::shape(
                OP,
                format!("no {} kernel for {s:?}", variant.name()),
            ))
        }
    };
    let hd = s.head_dim;
    let len = s.n_tokens * s.n_heads * hd;
    let qo = q.check(OP, "q", (s.n_tokens - 1) * s.q_stride + s.n_heads * hd)?;
    let oo = out.check(OP, "out", len)?;
    let mo = meta.check(OP, "meta", 2 * s.n_tokens)?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let groups = [
        to_u32(OP, "heads", heads)?,
        to_u32(OP, "tokens", s.n_tokens)?,
        1,
    ];
    if groups[0] > max || groups[1] > max {
        return Err(Error::shape(OP, format!("grid {groups:?} exceeds {max}")));
    }
    let mut params = attn_params(s, qo, mo)?;
    params[6] = oo;
    let key = KernelKey {
        op: Op::AttnPaged,
        format: QuantFormat::F32,
        variant,
    };
    enc.dispatch(
        key,
        bytemuck::bytes_of(&params),
        &[q.buffer, k_cache, v_cache, meta.buffer, out.buffer],
        groups,
    )
}

/// Errors unless the kernel takes `s`.
pub(crate) fn check_shape(s: &AttnShape) -> Result<()> {
    let hd = s.head_dim;
    if s.n_tokens == 0
        || s.n_kv_heads == 0
        || !s.n_heads.is_multiple_of(s.n_kv_heads)
        || hd == 0
        || !hd.is_multiple_of(2)
        || hd > ATTN_MAX_HEAD_DIM
        || s.n_heads >= 1 << 16
        || s.q_stride < s.n_heads * hd
    {
        return Err(Error::shape(
            "attn_paged",
            format!("{s:?}: heads must divide, head_dim even ≤ {ATTN_MAX_HEAD_DIM}"),
        ));
    }
    Ok(())
}

/// The attention body's params (`extra`, word 6, left 0 for the caller).
pub(crate) fn attn_params(s: &AttnShape, qo: u32, mo: u32) -> Result<[u32; 8]> {
    const OP: &str = "attn_paged";
    let window = match s.window {
        Some(w) => to_u32(OP, "window", w.clamp(1, (1 << 30) - 1))?,
        None => 0,
    };
    let window = window | s.dtype.code() << 30;
    Ok([
        s.n_heads as u32 | (s.n_kv_heads as u32) << 16,
        to_u32(OP, "q_stride", s.q_stride)?,
        s.head_dim as u32,
        s.scale.to_bits(),
        window,
        mo,
        0,
        qo,
    ])
}
