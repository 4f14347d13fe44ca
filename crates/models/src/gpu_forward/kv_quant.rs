//! The GPU KV cache for a `--kv-cache-dtype`: F16, or FP8 E4M3 / INT8 codes with the CPU
//! cache's per-token-per-head scales (written by `rope_kv`, read inside attention).

use marlin_gpu::CacheDtype;

use super::{GpuKvCache, GpuModel};
use crate::config::ModelConfig;
use crate::kv_cache::KvDtype;
use crate::Result;

/// The GPU cache element type storing K/V as `dtype`.
pub(crate) fn cache_dtype(dtype: KvDtype) -> CacheDtype {
    match dtype {
        KvDtype::F16 => CacheDtype::F16,
        KvDtype::Fp8E4M3 => CacheDtype::Fp8E4M3,
        KvDtype::Int8 => CacheDtype::Int8,
    }
}

impl GpuKvCache {
    /// Zeroed storage for `num_blocks` blocks per layer of `model` with K/V stored as
    /// `dtype` (MLA latent caches are F16 only: other dtypes are an error there).
    pub fn with_kv_dtype(
        model: &GpuModel,
        num_blocks: usize,
        dtype: KvDtype,
    ) -> Result<GpuKvCache> {
        Self::with_dtype(model, num_blocks, cache_dtype(dtype))
    }

    /// The cache element type.
    pub fn dtype(&self) -> CacheDtype {
        self.dtype
    }

    /// Bytes of K and V one token takes over all layers of a `cfg` model on the GPU with
    /// K/V stored as `dtype` (quantized: codes padded to 4 per head row plus the f32 scale;
    /// equal to [`KvCache::bytes_per_token_dtype`](crate::kv_cache::KvCache::bytes_per_token_dtype)
    /// when `head_dim` is a multiple of 4). MLA latent rows: f16.
    pub fn bytes_per_token(cfg: &ModelConfig, dtype: KvDtype) -> usize {
        match &cfg.mla {
            Some(m) => cfg.n_layers * m.latent_width() * 2,
            None => {
                let words = cache_dtype(dtype).slot_words(cfg.n_kv_heads, cfg.head_dim);
                cfg.n_layers * 2 * words * 4
            }
        }
    }
}
