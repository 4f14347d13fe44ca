//! KV block bookkeeping: a fixed pool of ref-counted block ids and the per-sequence block
//! tables that map token positions to blocks. Shared blocks (forks, later the prefix cache)
//! carry a ref count above one; copy-on-write swaps such a block before writing into it.

use crate::{Error, Result};

/// Tokens per KV block.
pub const BLOCK_SIZE: usize = 16;

/// The pool had too few free blocks; nothing was allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("out of KV blocks: {needed} needed, {free} free")]
pub struct OutOfBlocks {
    pub needed: usize,
    pub free: usize,
}

/// A fixed pool of block ids `0..num_blocks` with a free list and ref counts.
#[derive(Debug, Clone)]
pub struct BlockAllocator {
    block_size: usize,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl BlockAllocator {
    /// A pool of `num_blocks` blocks of [`BLOCK_SIZE`] tokens, all free.
    pub fn new(num_blocks: usize) -> Self {
        Self::with_block_size(num_blocks, BLOCK_SIZE)
    }

    /// A pool of `num_blocks` blocks of `block_size` tokens (at least 1), all free. Ids are
    /// `u32`, so at most `u32::MAX` blocks.
    pub fn with_block_size(num_blocks: usize, block_size: usize) -> Self {
        let n = num_blocks.min(u32::MAX as usize) as u32;
        Self {
            block_size: block_size.max(1),
            refs: vec![0; n as usize],
            // Reversed so that ids come out in ascending order.
            free: (0..n).rev().collect(),
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Size of the pool.
    pub fn num_blocks(&self) -> usize {
        self.refs.len()
    }

    /// Blocks on the free list.
    pub fn num_free(&self) -> usize {
        self.free.len()
    }

    /// Blocks needed to hold `tokens` tokens.
    pub fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.block_size)
    }

    /// References held on block `id` (0 when free or out of range).
    pub fn ref_count(&self, id: u32) -> u32 {
        self.refs.get(id as usize).copied().unwrap_or(0)
    }

    /// Takes a free block (ref count 1), or `None` when the pool is exhausted.
    pub fn allocate(&mut self) -> Option<u32> {
        let id = self.free.pop()?;
        self.refs[id as usize] = 1;
        Some(id)
    }

    /// Takes `n` free blocks, or none at all when fewer than `n` are free.
    pub fn allocate_n(&mut self, n: usize) -> std::result::Result<Vec<u32>, OutOfBlocks> {
        if n > self.free.len() {
            return Err(OutOfBlocks {
                needed: n,
                free: self.free.len(),
            });
        }
        let ids = self.free.split_off(self.free.len() - n);
        for &id in &ids {
            self.refs[id as usize] = 1;
        }
        Ok(ids.into_iter().rev().collect())
    }

    /// Adds a reference to an allocated block (sharing it).
    pub fn retain(&mut self, id: u32) -> Result<()> {
        let r = self.held(id)?;
        *r = r.checked_add(1).ok_or(Error::InvalidBlock {
            id,
            reason: "ref count overflow",
        })?;
        Ok(())
    }

    /// Drops a reference; the block returns to the free list when none are left.
    pub fn release(&mut self, id: u32) -> Result<()> {
        let r = self.held(id)?;
        *r -= 1;
        if *r == 0 {
            self.free.push(id);
        }
        Ok(())
    }

    fn held(&mut self, id: u32) -> Result<&mut u32> {
        match self.refs.get_mut(id as usize) {
            None => Err(Error::InvalidBlock {
                id,
                reason: "out of range",
            }),
            Some(0) => Err(Error::InvalidBlock {
                id,
                reason: "not allocated",
            }),
            Some(r) => Ok(r),
        }
    }
}

/// One sequence's blocks: position `p` lives in `blocks()[p / block_size]`, slot
/// `p % block_size`. It holds one reference on each block; give them back with
/// [`BlockTable::release_all`] (dropping the table without it leaks the blocks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTable {
    blocks: Vec<u32>,
    num_tokens: usize,
}

impl BlockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Block ids in position order.
    pub fn blocks(&self) -> &[u32] {
        &self.blocks
    }

    /// Tokens the sequence holds.
    pub fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Grows the table to hold `new_total_tokens` tokens, allocating the missing blocks all at
    /// once (none when the pool is short) and raising `num_tokens` to `new_total_tokens`.
    /// A smaller total changes nothing.
    pub fn reserve(
        &mut self,
        alloc: &mut BlockAllocator,
        new_total_tokens: usize,
    ) -> std::result::Result<(), OutOfBlocks> {
        let need = alloc
            .blocks_for(new_total_tokens)
            .saturating_sub(self.blocks.len());
        let ids = alloc.allocate_n(need)?;
        self.blocks.extend(ids);
        self.num_tokens = self.num_tokens.max(new_total_tokens);
        Ok(())
    }

    /// Shrinks the sequence to `n_tokens` tokens (no-op if it is not longer), releasing
    /// blocks that no longer hold any token (speculative-decoding rollback).
    pub fn truncate(&mut self, alloc: &mut BlockAllocator, n_tokens: usize) -> Result<()> {
        if n_tokens >= self.num_tokens {
            return Ok(());
        }
        let keep = alloc.blocks_for(n_tokens).min(self.blocks.len());
        let dropped = self.blocks.split_off(keep);
        self.num_tokens = n_tokens;
        release_each(alloc, &dropped)
    }

    /// Releases every block and empties the table. A block the allocator refuses (a table
    /// used with the wrong allocator) is logged and skipped.
    pub fn release_all(&mut self, alloc: &mut BlockAllocator) {
        if let Err(e) = release_each(alloc, &self.blocks) {
            tracing::warn!("block table release: {e}");
        }
        self.blocks.clear();
        self.num_tokens = 0;
    }

    /// Appends block `id`, on which the caller already holds this table's reference (a
    /// prefix-cache hit), holding `tokens` more tokens.
    pub fn push_block(&mut self, id: u32, tokens: usize) {
        self.blocks.push(id);
        self.num_tokens += tokens;
    }

    /// Puts `id` at position `index` (copy-on-write) and returns the block it replaces; the
    /// caller moves the references. `None` when `index` is out of range.
    pub fn replace_block(&mut self, index: usize, id: u32) -> Option<u32> {
        let slot = self.blocks.get_mut(index)?;
        Some(std::mem::replace(slot, id))
    }

    /// A copy of this table that shares every block (each gains a reference).
    pub fn fork(&self, alloc: &mut BlockAllocator) -> Result<BlockTable> {
        for (i, &id) in self.blocks.iter().enumerate() {
            if let Err(e) = alloc.retain(id) {
                release_each(alloc, &self.blocks[..i])?;
                return Err(e);
            }
        }
        Ok(self.clone())
    }
}

/// Releases every id, going on past failures; returns the first failure.
fn release_each(alloc: &mut BlockAllocator, ids: &[u32]) -> Result<()> {
    let mut first = Ok(());
    for &id in ids {
        if let Err(e) = alloc.release(id) {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}
