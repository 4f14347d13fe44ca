//! Flash prefill attention on cooperative matrices (`attn_flash`): blocks of up to
//! [`ATTN_FLASH_BLOCK`] consecutive query tokens of one sequence against 32-key tiles of
//! an f16 paged cache, S = Q Kᵀ and P V on the tensor cores (two passes: the softmax
//! statistics, then the output). Devices without cooperative matrices keep `attn_paged`.

use super::attention::AttnShape;
use super::attention_prefill::block_params;
use super::Span;
use crate::op::Op;
use crate::registry::{KernelKey, Variant, ATTN_FLASH_MAX_HD};
use crate::{CacheDtype, Error, Result, StepEncoder};
use marlin_core::QuantFormat;

/// Query tokens per block (`BQ` in attn_flash.wgsl).
pub const ATTN_FLASH_BLOCK: usize = 64;

/// Whether `attn_flash` runs `s` on this encoder's device: cooperative matrices, an f16
/// cache, and a head size that is a multiple of 16 up to 128.
pub fn attn_flash_supported(enc: &StepEncoder<'_>, s: &AttnShape) -> bool {
    s.dtype == CacheDtype::F16
        && s.head_dim.is_multiple_of(16)
        && s.head_dim <= ATTN_FLASH_MAX_HD as usize
        && enc.ctx().runs(flash_key())
}

fn flash_key() -> KernelKey {
    KernelKey {
        op: Op::AttnFlash,
        format: QuantFormat::F32,
        variant: Variant::Coop,
    }
}

/// Record attention of prompt tokens as [`record_attention_prefill`](
/// super::attention_prefill::record_attention_prefill) does, with `blocks` of up to
/// [`ATTN_FLASH_BLOCK`] tokens ([`query_blocks`](super::attention_prefill::query_blocks)).
/// Errors unless [`attn_flash_supported`].
#[allow(clippy::too_many_arguments)]
pub fn record_attention_flash(
    enc: &mut StepEncoder<'_>,
    s: &AttnShape,
    q: &wgpu::Buffer,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
    meta: Span<'_>,
    blocks: Span<'_>,
    n_blocks: usize,
    out: Span<'_>,
) -> Result<()> {
    const OP: &str = "attn_flash";
    if !attn_flash_supported(enc, s) {
        return Err(Error::shape(
            OP,
            format!(
                "needs cooperative matrices, an f16 cache and head_dim % 16 == 0 ≤ \
                 {ATTN_FLASH_MAX_HD}; got {:?}, head_dim {}",
                s.dtype, s.head_dim
            ),
        ));
    }
    let (params, grid) = block_params(enc, OP, s, q, meta, blocks, n_blocks, out)?;
    let bufs = [q, k_cache, v_cache, meta.buffer, out.buffer];
    enc.dispatch(flash_key(), bytemuck::bytes_of(&params), &bufs, grid)
}
