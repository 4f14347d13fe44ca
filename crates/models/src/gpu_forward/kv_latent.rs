//! The GPU latent cache of MLA models: per layer one f16 buffer of `kv_lora_rank +
//! qk_rope_head_dim` values per token slot (576 for GLM-4.7-Flash), in the same 16-token
//! blocks and block tables as the K/V cache of other models.

use marlin_gpu::{wgpu, CacheDtype};

use super::{GpuKvCache, GpuModel};
use crate::kv_cache::BLOCK_SIZE;
use crate::{Error, Result};

impl GpuKvCache {
    /// Zeroed latent storage of `width` values per slot for `num_blocks` blocks per layer.
    pub(super) fn latent(
        model: &GpuModel,
        num_blocks: usize,
        dtype: CacheDtype,
        width: usize,
    ) -> Result<GpuKvCache> {
        if dtype != CacheDtype::F16 {
            return Err(Error::Unsupported(format!(
                "{dtype:?} KV on the GPU for MLA models (the latent cache is f16)"
            )));
        }
        let bytes = num_blocks
            .checked_mul(BLOCK_SIZE * width * 2)
            .ok_or_else(|| Error::Config(format!("{num_blocks} latent blocks overflow")))?
            as u64;
        let limit = model.ctx.max_binding();
        if bytes > limit {
            return Err(Error::Unsupported(format!(
                "a GPU latent layer of {num_blocks} blocks takes {bytes} bytes, over the binding limit {limit}"
            )));
        }
        let make = || {
            model.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("marlin-kv-latent"),
                size: bytes.max(16).div_ceil(16) * 16,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        Ok(GpuKvCache {
            k: Vec::new(),
            v: Vec::new(),
            latent: (0..model.config.n_layers).map(|_| make()).collect(),
            num_blocks,
            dtype,
        })
    }

    /// Values one token takes per layer: `kv_lora_rank + rope_dim` for the latent cache of
    /// an MLA model, `2 · kv_dim` (K and V) otherwise.
    pub fn values_per_token_layer(&self, model: &GpuModel) -> usize {
        match &model.config.mla {
            Some(m) if !self.latent.is_empty() => m.latent_width(),
            _ => 2 * model.config.kv_dim(),
        }
    }

    /// Bytes of device memory one layer of this cache holds (its K and V, or its latent).
    pub fn layer_bytes(&self) -> u64 {
        let first = |v: &[wgpu::Buffer]| v.first().map_or(0, wgpu::Buffer::size);
        first(&self.k) + first(&self.v) + first(&self.latent)
    }

    /// Records the copy of block `src` over block `dst` in every latent layer (through a
    /// staging buffer: wgpu refuses copies within one buffer).
    pub(super) fn copy_latent_block(
        &self,
        model: &GpuModel,
        enc: &mut wgpu::CommandEncoder,
        src: u32,
        dst: u32,
    ) {
        let Some(m) = &model.config.mla else { return };
        if self.latent.is_empty() {
            return;
        }
        let bytes = (BLOCK_SIZE * m.latent_width() * 2) as u64;
        let tmp = model.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("marlin-latent-copy-tmp"),
            size: bytes,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        for buf in &self.latent {
            enc.copy_buffer_to_buffer(buf, u64::from(src) * bytes, &tmp, 0, bytes);
            enc.copy_buffer_to_buffer(&tmp, 0, buf, u64::from(dst) * bytes, bytes);
        }
    }
}
