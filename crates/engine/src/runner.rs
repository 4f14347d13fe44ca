//! `Runner`: runs batched forward steps of one model on the CPU or the GPU, with the paged
//! KV storage that the scheduler's block ids index.
//!
//! The CPU matmul computes a token differently when it falls in a whole 4-token tile than
//! when it is part of the remainder (logits move by up to ~0.7), so a sequence's output
//! would depend on what else shares its batch. In batch-invariant mode every CPU step is
//! padded to a multiple of 4 tokens with a dummy sequence writing into a scratch block
//! past the pool, and every token takes the tiled path.

use std::sync::Arc;

use marlin_models::kv_cache::{KvCache, KvDtype};
use marlin_models::{Device, GpuKvCache, GpuModel, Logits, LogitsRequest, Model, SeqInput};

use crate::Result;

/// A model and its KV storage on one device.
pub struct Runner {
    model: Arc<Model>,
    cpu_kv: KvCache,
    gpu: Option<(Arc<GpuModel>, GpuKvCache)>,
    num_blocks: usize,
    pad: bool,
}

/// Token tile of the CPU GEMM kernels.
const TILE: usize = 4;
/// Token ids of the padding sequence.
const PAD_TOKENS: [u32; TILE] = [0; TILE];

impl Runner {
    /// Storage for `num_blocks` blocks of `model` on `device`; `batch_invariant` pads CPU
    /// steps so that a sequence's logits do not depend on its batch.
    pub fn new(
        model: Arc<Model>,
        device: Device,
        num_blocks: usize,
        batch_invariant: bool,
    ) -> Result<Self> {
        Self::with_kv_dtype(model, device, num_blocks, batch_invariant, KvDtype::F16)
    }

    /// [`Runner::new`] with the K/V cache stored as `kv_dtype` (F16, or FP8 E4M3 / INT8
    /// codes with a scale per token per kv head, on the CPU and on the GPU alike; MLA
    /// latent caches are F16 only).
    pub fn with_kv_dtype(
        model: Arc<Model>,
        device: Device,
        num_blocks: usize,
        batch_invariant: bool,
        kv_dtype: KvDtype,
    ) -> Result<Self> {
        let num_blocks = num_blocks.max(1);
        Ok(match device {
            Device::Cpu => Self {
                // One more block: the padding sequence's scratch.
                cpu_kv: KvCache::with_dtype(&model.config, num_blocks + 1, kv_dtype)?,
                model,
                gpu: None,
                num_blocks,
                pad: batch_invariant,
            },
            Device::Gpu(g) => {
                let kv = GpuKvCache::with_kv_dtype(&g, num_blocks, kv_dtype)?;
                Self {
                    cpu_kv: KvCache::new(&model.config, 0),
                    model,
                    gpu: Some((g, kv)),
                    num_blocks,
                    pad: false,
                }
            }
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// KV blocks of the storage.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// True when steps run on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    /// One forward step over `seqs`.
    pub fn forward(&mut self, seqs: &[SeqInput<'_>]) -> Result<Logits> {
        if let Some((g, kv)) = &self.gpu {
            return Ok(g.forward(seqs, kv)?);
        }
        let n: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        let pad = (TILE - n % TILE) % TILE;
        if !self.pad || pad == 0 {
            return Ok(self.model.forward(seqs, &mut self.cpu_kv)?);
        }
        let scratch = [self.num_blocks as u32];
        let mut all = seqs.to_vec();
        all.push(SeqInput {
            tokens: &PAD_TOKENS[..pad],
            start_pos: 0,
            block_table: &scratch,
            logits: LogitsRequest::None,
        });
        let mut l = self.model.forward(&all, &mut self.cpu_kv)?;
        l.rows_per_seq.pop();
        Ok(l)
    }

    /// One step that returns only the argmax id of each requested logits row (greedy
    /// decoding reads back ids, not logits, on the GPU).
    pub fn forward_argmax(&mut self, seqs: &[SeqInput<'_>]) -> Result<Vec<u32>> {
        if let Some((g, kv)) = &self.gpu {
            return Ok(g.forward_argmax(seqs, kv)?);
        }
        let l = self.forward(seqs)?;
        Ok((0..l.rows())
            .map(|r| crate::sampler::argmax(l.row(r)))
            .collect())
    }

    /// Copies KV block `src` over `dst` (copy-on-write).
    pub fn copy_block(&mut self, src: u32, dst: u32) -> Result<()> {
        match &self.gpu {
            Some((g, kv)) => kv.copy_block(g, src, dst)?,
            None => self.cpu_kv.copy_block(src, dst)?,
        }
        Ok(())
    }
}
