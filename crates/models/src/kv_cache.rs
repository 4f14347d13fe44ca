//! `KvCache`: the paged K/V storage of every layer of a model (the engine hands out blocks).

use marlin_cpu::kv::{KvLayout, PagedKv};

use crate::config::ModelConfig;
use crate::{Error, Result};

/// Tokens per KV block.
pub const BLOCK_SIZE: usize = 16;

/// Paged K/V storage for all layers, `num_blocks` blocks of [`BLOCK_SIZE`] tokens each.
pub struct KvCache {
    layers: Vec<PagedKv>,
    num_blocks: usize,
}

impl KvCache {
    /// Storage for `num_blocks` blocks per layer.
    pub fn new(cfg: &ModelConfig, num_blocks: usize) -> Self {
        let layout = KvLayout {
            block_size: BLOCK_SIZE,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
        };
        let layers = (0..cfg.n_layers)
            .map(|_| PagedKv::new(layout, num_blocks))
            .collect();
        Self { layers, num_blocks }
    }

    /// Blocks sized to hold `tokens` tokens (rounded up to whole blocks).
    pub fn for_tokens(cfg: &ModelConfig, tokens: usize) -> Self {
        Self::new(cfg, tokens.div_ceil(BLOCK_SIZE).max(1))
    }

    /// Number of blocks per layer.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Bytes of K and V one token takes over all layers (f16 storage).
    pub fn bytes_per_token(cfg: &ModelConfig) -> usize {
        cfg.n_layers * 2 * cfg.kv_dim() * 2
    }

    /// Layer `l`'s storage.
    pub fn layer_mut(&mut self, l: usize) -> Result<&mut PagedKv> {
        let n = self.layers.len();
        self.layers
            .get_mut(l)
            .ok_or_else(|| Error::Config(format!("KV cache has {n} layers, asked for {l}")))
    }
}
