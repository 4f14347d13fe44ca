//! `KvCache`: the paged K/V storage of every layer of a model (the engine hands out blocks).

pub use marlin_cpu::kv::KvDtype;
use marlin_cpu::kv::{KvLayout, PagedKv};
use marlin_cpu::kv_latent::{LatentLayout, PagedLatent};

use crate::config::ModelConfig;
use crate::{Error, Result};

/// Tokens per KV block.
pub const BLOCK_SIZE: usize = 16;

/// Paged K/V storage for all layers, `num_blocks` blocks of [`BLOCK_SIZE`] tokens each.
///
/// MLA models (`ModelConfig::mla`) store no K/V: each layer holds one latent row of
/// `kv_lora_rank + qk_rope_head_dim` F16 values per token (`[RMSNorm(c_kv) ‖ RoPE(k_pe)]`),
/// laid out `[block][slot][value]` in a [`PagedLatent`], and `layer_mut` is an error.
pub struct KvCache {
    layers: Vec<PagedKv>,
    latent: Vec<PagedLatent>,
    num_blocks: usize,
    dtype: KvDtype,
}

impl KvCache {
    /// Storage for `num_blocks` blocks per layer.
    pub fn new(cfg: &ModelConfig, num_blocks: usize) -> Self {
        let layout = KvLayout {
            block_size: BLOCK_SIZE,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
        };
        if let Some(m) = &cfg.mla {
            let layout = LatentLayout {
                block_size: BLOCK_SIZE,
                width: m.latent_width(),
            };
            // A size that overflows gives zero blocks (every write then fails), as PagedKv does.
            let latent: Option<Vec<PagedLatent>> = (0..cfg.n_layers)
                .map(|_| PagedLatent::new(layout, num_blocks).ok())
                .collect();
            let (latent, num_blocks) = match latent {
                Some(l) => (l, num_blocks),
                None => (Vec::new(), 0),
            };
            return Self {
                layers: Vec::new(),
                latent,
                num_blocks,
                dtype: KvDtype::F16,
            };
        }
        let layers = (0..cfg.n_layers)
            .map(|_| PagedKv::new(layout, num_blocks))
            .collect();
        Self {
            layers,
            latent: Vec::new(),
            num_blocks,
            dtype: KvDtype::F16,
        }
    }

    /// Storage for `num_blocks` blocks per layer with K/V stored as `dtype`. MLA models
    /// (latent rows) support only F16; a size that overflows is an error.
    pub fn with_dtype(cfg: &ModelConfig, num_blocks: usize, dtype: KvDtype) -> Result<Self> {
        if dtype == KvDtype::F16 {
            return Ok(Self::new(cfg, num_blocks));
        }
        if cfg.mla.is_some() {
            return Err(Error::Config(format!(
                "KV cache dtype {dtype:?}: MLA (latent) caches are F16 only"
            )));
        }
        let layout = KvLayout {
            block_size: BLOCK_SIZE,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
        };
        let layers = (0..cfg.n_layers)
            .map(|_| PagedKv::with_dtype(layout, num_blocks, dtype))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Self {
            layers,
            latent: Vec::new(),
            num_blocks,
            dtype,
        })
    }

    /// Element type of the K/V storage.
    pub fn dtype(&self) -> KvDtype {
        self.dtype
    }

    /// Blocks sized to hold `tokens` tokens (rounded up to whole blocks).
    pub fn for_tokens(cfg: &ModelConfig, tokens: usize) -> Self {
        Self::new(cfg, tokens.div_ceil(BLOCK_SIZE).max(1))
    }

    /// Number of blocks per layer.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Bytes of K and V (MLA: of the latent) one token takes over all layers (f16 storage).
    pub fn bytes_per_token(cfg: &ModelConfig) -> usize {
        match &cfg.mla {
            Some(m) => cfg.n_layers * m.latent_width() * 2,
            None => cfg.n_layers * 2 * cfg.kv_dim() * 2,
        }
    }

    /// Bytes one token takes over all layers with K/V stored as `dtype` (scales included;
    /// MLA latent rows are always F16).
    pub fn bytes_per_token_dtype(cfg: &ModelConfig, dtype: KvDtype) -> usize {
        match &cfg.mla {
            Some(_) => Self::bytes_per_token(cfg),
            None => cfg.n_layers * dtype.bytes_per_token(cfg.n_kv_heads, cfg.head_dim),
        }
    }

    /// Layer `l`'s latent storage (MLA models).
    pub fn latent_mut(&mut self, l: usize) -> Result<&mut PagedLatent> {
        let n = self.latent.len();
        self.latent.get_mut(l).ok_or_else(|| {
            Error::Config(format!(
                "KV cache has {n} latent (MLA) layers, asked for {l}"
            ))
        })
    }

    /// Layer `l`'s storage.
    pub fn layer_mut(&mut self, l: usize) -> Result<&mut PagedKv> {
        let n = self.layers.len();
        self.layers
            .get_mut(l)
            .ok_or_else(|| Error::Config(format!("KV cache has {n} layers, asked for {l}")))
    }

    /// Copies block `src` over block `dst` in every layer (copy-on-write of a shared block).
    pub fn copy_block(&mut self, src: u32, dst: u32) -> Result<()> {
        for layer in &mut self.layers {
            layer.copy_block(src, dst)?;
        }
        for layer in &mut self.latent {
            layer.copy_block(src, dst)?;
        }
        Ok(())
    }
}
