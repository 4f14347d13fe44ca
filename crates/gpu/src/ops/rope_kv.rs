//! Fused RoPE + KV-cache write launcher: one dispatch ropes a step's q heads into a
//! contiguous q buffer and writes its roped k and its v into the paged caches (it replaces
//! `rope` + `kv_write`, one dispatch per layer less). Every [`CacheDtype`] is written,
//! FP8 E4M3 / INT8 codes with the CPU's per-token-per-head scales included.

use marlin_core::rope::RopeMode;

use super::kv::CacheDtype;
use super::{dispatch_op, grid, to_u32, wg, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// Where [`record_rope_kv`] reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct RopeKvIo<'a> {
    /// Per token `half` cosines then `half` sines.
    pub cs: Span<'a>,
    /// Token `t`'s q heads start at `x + t · src_stride`, its k heads right after them.
    pub x: Span<'a>,
    /// Token `t`'s v heads start at `v + t · src_stride`.
    pub v: Span<'a>,
    pub src_stride: usize,
    /// One cache slot per token.
    pub slots: Span<'a>,
    /// Roped q, `n_tokens × n_heads × head_dim` floats from 0.
    pub q_out: &'a wgpu::Buffer,
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
}

/// Head counts and sizes of a [`record_rope_kv`] dispatch.
#[derive(Debug, Clone, Copy)]
pub struct RopeKvShape {
    pub n_tokens: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Pairs rotated per head (`n_rot / 2`); the dims past `2 · half` pass through.
    pub half: usize,
    pub mode: RopeMode,
    pub dtype: CacheDtype,
}

/// Record the fused RoPE of q and k and the cache write of k and v. `x` must not be the
/// `q_out` buffer; slots must lie inside the caches (the caller checks its block tables).
pub fn record_rope_kv(enc: &mut StepEncoder<'_>, s: &RopeKvShape, io: &RopeKvIo<'_>) -> Result<()> {
    const OP: &str = "rope_kv";
    let hd = s.head_dim;
    let (qd, kvd) = (s.n_heads * hd, s.n_kv_heads * hd);
    if s.n_tokens == 0
        || s.n_heads == 0
        || s.n_kv_heads == 0
        || s.n_heads >= 1 << 16
        || s.n_kv_heads >= 1 << 16
        || hd == 0
        || !hd.is_multiple_of(2)
        || hd >= 1 << 12
        || s.half == 0
        || 2 * s.half > hd
        || io.src_stride < qd + kvd
    {
        return Err(Error::shape(
            OP,
            format!(
                "{s:?} with stride {}: even head_dim, 0 < 2·half ≤ head_dim",
                io.src_stride
            ),
        ));
    }
    let last = (s.n_tokens - 1) * io.src_stride;
    let co = io.cs.check(OP, "cs", s.n_tokens * 2 * s.half)?;
    let xo = io.x.check(OP, "x", last + qd + kvd)?;
    let vo = io.v.check(OP, "v", last + kvd)?;
    let so = io.slots.check(OP, "slots", s.n_tokens)?;
    Span::whole(io.q_out).check(OP, "q_out", s.n_tokens * qd)?;
    for (name, c) in [("k_cache", io.k_cache), ("v_cache", io.v_cache)] {
        Span::whole(c).check(OP, name, s.dtype.slot_words(s.n_kv_heads, hd))?;
    }
    let op = match s.mode {
        RopeMode::Normal => Op::RopeKvNormal,
        RopeMode::Neox => Op::RopeKvNeox,
    };
    // Quantized caches: one thread per K or V head row (its scale needs the whole row).
    let per_token = if s.dtype.is_quantized() {
        s.n_heads * (hd / 2) + 2 * s.n_kv_heads
    } else {
        (s.n_heads + 2 * s.n_kv_heads) * (hd / 2)
    };
    let groups = grid(enc, OP, s.n_tokens * per_token, wg(op))?;
    let params = [
        to_u32(OP, "tokens", s.n_tokens)?,
        s.n_heads as u32 | (s.n_kv_heads as u32) << 16,
        hd as u32 | (s.half as u32) << 12 | s.dtype.code() << 30,
        co,
        xo,
        vo,
        to_u32(OP, "src_stride", io.src_stride)?,
        so,
    ];
    let storage = [
        io.cs.buffer,
        io.x.buffer,
        io.v.buffer,
        io.slots.buffer,
        io.q_out,
        io.k_cache,
        io.v_cache,
    ];
    dispatch_op(enc, op, params, &storage, groups)
}
