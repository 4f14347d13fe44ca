//! Paged latent storage of one MLA layer: each token slot holds one F16 row of `width` values
//! (the compressed `c_kv ‖ k_pe`), shared by every head, addressed through a block table.

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::ops::f16_to_f32;
use crate::{Error, Result};

/// Shape of a paged latent cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentLayout {
    /// Token slots per block (16).
    pub block_size: usize,
    /// Values per token: `kv_lora_rank + qk_rope_head_dim` (576 for GLM-4.7-Flash).
    pub width: usize,
}

/// One layer's latent rows for `num_blocks` blocks: `[block][slot][width]` F16.
#[derive(Debug, Clone)]
pub struct PagedLatent {
    layout: LatentLayout,
    num_blocks: usize,
    data: Vec<f16>,
}

impl PagedLatent {
    /// Storage for `num_blocks` blocks; a zero dimension or an overflowing size is an error.
    pub fn new(layout: LatentLayout, num_blocks: usize) -> Result<Self> {
        if layout.block_size == 0 || layout.width == 0 {
            return Err(shape(format!("zero dimension in {layout:?}")));
        }
        let len = layout
            .width
            .checked_mul(layout.block_size)
            .and_then(|n| n.checked_mul(num_blocks))
            .filter(|&n| n <= isize::MAX as usize / 2)
            .ok_or_else(|| shape(format!("{num_blocks} blocks of {layout:?} overflow")))?;
        Ok(Self {
            layout,
            num_blocks,
            data: vec![f16::ZERO; len],
        })
    }

    /// The layout.
    pub fn layout(&self) -> LatentLayout {
        self.layout
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Bytes one token takes in this layer.
    pub fn bytes_per_token(&self) -> usize {
        self.layout.width * std::mem::size_of::<f16>()
    }

    /// Global slot index (`block · block_size + slot`) of position `pos`.
    pub fn slot_index(&self, block_table: &[u32], pos: usize) -> Result<usize> {
        let bs = self.layout.block_size;
        let index = pos / bs;
        let id = *block_table.get(index).ok_or(Error::MissingBlock {
            pos,
            index,
            len: block_table.len(),
        })?;
        self.check_block(id)?;
        Ok(id as usize * bs + pos % bs)
    }

    fn check_block(&self, id: u32) -> Result<()> {
        if (id as usize) < self.num_blocks {
            Ok(())
        } else {
            Err(Error::BlockOutOfRange {
                id,
                num_blocks: self.num_blocks,
            })
        }
    }

    /// Stores one token's latent row (`width` values) at position `pos`.
    pub fn write(&mut self, block_table: &[u32], pos: usize, row: &[f32]) -> Result<()> {
        let w = self.layout.width;
        if row.len() != w {
            return Err(shape(format!(
                "write: {} values, a token needs {w}",
                row.len()
            )));
        }
        let at = self.slot_index(block_table, pos)? * w;
        self.data[at..at + w].convert_from_f32_slice(row);
        Ok(())
    }

    /// The F16 row of position `pos`.
    pub fn row(&self, block_table: &[u32], pos: usize) -> Result<&[f16]> {
        let w = self.layout.width;
        let at = self.slot_index(block_table, pos)? * w;
        Ok(&self.data[at..at + w])
    }

    /// The F16 row of global slot `slot` (already checked through [`Self::slot_index`]).
    #[inline]
    pub(crate) fn slot_row(&self, slot: usize) -> &[f16] {
        let w = self.layout.width;
        &self.data[slot * w..(slot + 1) * w]
    }

    /// The row of position `pos` decoded to f32 (`width` values).
    pub fn read(&self, block_table: &[u32], pos: usize, out: &mut [f32]) -> Result<()> {
        if out.len() != self.layout.width {
            return Err(shape(format!(
                "read: buffer must hold {} values",
                self.layout.width
            )));
        }
        f16_to_f32(self.row(block_table, pos)?, out);
        Ok(())
    }

    /// Copies block `src` over block `dst` (copy-on-write of a shared block).
    pub fn copy_block(&mut self, src: u32, dst: u32) -> Result<()> {
        self.check_block(src)?;
        self.check_block(dst)?;
        let n = self.layout.block_size * self.layout.width;
        let (s, d) = (src as usize * n, dst as usize * n);
        self.data.copy_within(s..s + n, d);
        Ok(())
    }
}

fn shape(msg: String) -> Error {
    Error::Shape {
        op: "paged_latent",
        msg,
    }
}
