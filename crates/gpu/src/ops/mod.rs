//! Op launchers: validate shapes, fill the kernel's params, record dispatches into a
//! [`StepEncoder`]. One file per op family.

pub mod act_q8;
pub mod argmax;
pub mod attention;
pub mod attention_flash;
pub mod attention_prefill;
pub mod attention_split;
pub mod attn_mla;
pub mod attn_mla_gemm;
pub mod elementwise;
pub mod embed;
pub mod gemm_splitk;
pub mod gemv_fused;
pub mod gemv_hadamard;
pub mod hadamard;
pub mod kv;
pub mod matmul;
pub mod moe;
pub mod moe_experts;
pub mod moe_gemm;
pub mod moe_gemv;
pub mod moe_grouped;
pub mod moe_hadamard_scale;
pub mod norm;
pub mod rope;
pub mod rope_kv;
pub mod sample;

use marlin_core::QuantFormat;

use crate::op::Op;
use crate::registry::{op_workgroup_size, KernelKey, Variant};
use crate::{Error, Result, StepEncoder};

/// A buffer and a starting element (4-byte word) inside it.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    pub buffer: &'a wgpu::Buffer,
    /// Offset in 4-byte elements.
    pub offset: usize,
}

impl<'a> Span<'a> {
    /// Elements `offset..` of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer, offset: usize) -> Self {
        Self { buffer, offset }
    }

    /// Elements from 0.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Self { buffer, offset: 0 }
    }

    /// Errors unless `len` elements from the offset fit the buffer; returns the offset as u32.
    pub(crate) fn check(&self, op: &'static str, what: &str, len: usize) -> Result<u32> {
        let end = self.offset.saturating_add(len);
        if (end as u64).saturating_mul(4) > self.buffer.size() {
            return Err(Error::shape(
                op,
                format!(
                    "{what}: elements {}..{end} exceed a {}-byte buffer",
                    self.offset,
                    self.buffer.size()
                ),
            ));
        }
        to_u32(op, what, end).map(|_| self.offset as u32)
    }
}

/// `v` as u32, or a shape error naming `what`.
pub(crate) fn to_u32(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} exceeds u32")))
}

/// Workgroups covering `threads` threads of `wg`, folded into x/y past the per-dimension
/// limit (kernels compute `(wid.x + wid.y * nwg.x) * WG + lid` and bound-check).
pub(crate) fn grid(
    enc: &StepEncoder<'_>,
    op: &'static str,
    threads: usize,
    wg: u32,
) -> Result<[u32; 3]> {
    let g = to_u32(op, "workgroups", threads.div_ceil(wg as usize).max(1))?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension.max(1);
    let gx = g.min(max);
    let gy = g.div_ceil(gx);
    if gy > max {
        return Err(Error::TooLarge {
            what: format!("{op} grid"),
            bytes: u64::from(g),
            limit: u64::from(max) * u64::from(max),
        });
    }
    Ok([gx, gy, 1])
}

/// Record one dispatch of the format-less kernel `op` with 8 words of params.
pub(crate) fn dispatch_op(
    enc: &mut StepEncoder<'_>,
    op: Op,
    params: [u32; 8],
    storage: &[&wgpu::Buffer],
    groups: [u32; 3],
) -> Result<()> {
    let key = KernelKey {
        op,
        format: QuantFormat::F32,
        variant: Variant::Plain,
    };
    enc.dispatch(key, bytemuck::bytes_of(&params), storage, groups)
}

/// Threads per workgroup of `op`'s kernel.
pub(crate) fn wg(op: Op) -> u32 {
    op_workgroup_size(op)
}
