//! `KvPool`: the block allocator plus the prefix cache. Allocation evicts unreferenced
//! cached blocks (LRU) when the free list runs short; prefix matching shares cached blocks
//! into a new sequence's table; copy-on-write gives a sequence its own copy of a shared
//! block before it writes into it.

use crate::blocks::{BlockAllocator, BlockTable, OutOfBlocks, BLOCK_SIZE};
use crate::prefix_cache::{PrefixCache, ROOT};
use crate::Result;

/// Counters of the prefix cache, in blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixStats {
    /// Full prompt blocks looked up.
    pub queried: u64,
    /// Of those, found in the cache.
    pub hits: u64,
    /// Cached blocks evicted.
    pub evicted: u64,
}

/// Blocks and the prefix cache of one KV cache.
#[derive(Debug, Clone)]
pub struct KvPool {
    alloc: BlockAllocator,
    cache: PrefixCache,
    caching: bool,
    stats: PrefixStats,
}

impl KvPool {
    /// `num_blocks` blocks of [`BLOCK_SIZE`] tokens; `caching` turns the prefix cache on.
    pub fn new(num_blocks: usize, caching: bool) -> Self {
        Self {
            alloc: BlockAllocator::new(num_blocks),
            cache: PrefixCache::new(),
            caching,
            stats: PrefixStats::default(),
        }
    }

    /// The allocator (ref counts, free list).
    pub fn allocator(&self) -> &BlockAllocator {
        &self.alloc
    }

    /// Total blocks.
    pub fn num_blocks(&self) -> usize {
        self.alloc.num_blocks()
    }

    /// Blocks on the free list.
    pub fn num_free(&self) -> usize {
        self.alloc.num_free()
    }

    /// Cached blocks that no sequence uses (evictable).
    pub fn num_evictable(&self) -> usize {
        let a = &self.alloc;
        self.cache.lru_candidates(|b| a.ref_count(b) == 1).len()
    }

    /// Whether `block` is in the prefix cache.
    pub fn is_cached(&self, block: u32) -> bool {
        self.cache.contains_block(block)
    }

    /// Blocks in the prefix cache.
    pub fn num_cached(&self) -> usize {
        self.cache.len()
    }

    /// Blocks a new allocation can get: free plus evictable.
    pub fn available(&self) -> usize {
        self.num_free() + self.num_evictable()
    }

    /// Blocks held by sequences (neither free nor only cached).
    pub fn num_used(&self) -> usize {
        self.num_blocks() - self.available()
    }

    /// Prefix-cache counters.
    pub fn stats(&self) -> PrefixStats {
        self.stats
    }

    /// Evicts unreferenced cached blocks, LRU first, until `n` blocks are free (or none is
    /// left to evict).
    fn make_free(&mut self, n: usize) {
        if self.alloc.num_free() >= n {
            return;
        }
        let a = &self.alloc;
        let victims = self.cache.lru_candidates(|b| a.ref_count(b) == 1);
        for b in victims {
            if self.alloc.num_free() >= n {
                break;
            }
            if self.cache.remove_block(b) && self.alloc.release(b).is_ok() {
                self.stats.evicted += 1;
            }
        }
    }

    /// Grows `table` to hold `total_tokens` tokens.
    pub fn reserve(
        &mut self,
        table: &mut BlockTable,
        total_tokens: usize,
    ) -> std::result::Result<(), OutOfBlocks> {
        let need = self
            .alloc
            .blocks_for(total_tokens)
            .saturating_sub(table.blocks().len());
        self.make_free(need);
        table.reserve(&mut self.alloc, total_tokens)
    }

    /// Releases every block of `table`.
    pub fn release(&mut self, table: &mut BlockTable) {
        table.release_all(&mut self.alloc);
    }

    /// A table sharing all of `table`'s blocks.
    pub fn fork(&mut self, table: &BlockTable) -> Result<BlockTable> {
        table.fork(&mut self.alloc)
    }

    /// Key chain of the full blocks of `tokens[..limit]`.
    pub fn chain(&self, tokens: &[u32], limit: usize) -> Vec<u64> {
        let mut parent = ROOT;
        tokens[..limit.min(tokens.len())]
            .chunks_exact(BLOCK_SIZE)
            .map(|c| {
                parent = self.cache.key(parent, c);
                parent
            })
            .collect()
    }

    /// Shares the cached blocks of the longest cached prefix of `tokens` (whole blocks, and
    /// never the last token, whose logits the caller needs) into the empty `table`. Returns
    /// the number of tokens covered.
    pub fn match_prefix(&mut self, table: &mut BlockTable, tokens: &[u32]) -> usize {
        if !self.caching || !table.blocks().is_empty() {
            return 0;
        }
        let keys = self.chain(tokens, tokens.len().saturating_sub(1));
        self.stats.queried += keys.len() as u64;
        let mut parent = ROOT;
        for (i, &key) in keys.iter().enumerate() {
            let chunk = &tokens[i * BLOCK_SIZE..(i + 1) * BLOCK_SIZE];
            let Some(b) = self.cache.lookup(key, parent, chunk) else {
                break;
            };
            if self.alloc.retain(b).is_err() {
                break;
            }
            table.push_block(b, BLOCK_SIZE);
            self.stats.hits += 1;
            parent = key;
        }
        table.num_tokens()
    }

    /// Offers the full blocks of `tokens[..computed]` held by `table` to the cache; `keys`
    /// is the sequence's key chain so far and grows as blocks are offered.
    pub fn offer_full_blocks(
        &mut self,
        table: &BlockTable,
        tokens: &[u32],
        computed: usize,
        keys: &mut Vec<u64>,
    ) {
        if !self.caching {
            return;
        }
        let full = (computed / BLOCK_SIZE).min(table.blocks().len());
        while keys.len() < full {
            let i = keys.len();
            let parent = keys.last().copied().unwrap_or(ROOT);
            let chunk = &tokens[i * BLOCK_SIZE..(i + 1) * BLOCK_SIZE];
            let key = self.cache.key(parent, chunk);
            let b = table.blocks()[i];
            if self.cache.insert(key, parent, chunk, b) && self.alloc.retain(b).is_err() {
                self.cache.remove_block(b);
            }
            keys.push(key);
        }
    }

    /// Blocks `table` needs so that it can hold `total_tokens` tokens and write positions
    /// `from..`: new blocks plus a copy for a shared block at `from`.
    pub fn blocks_needed(&self, table: &BlockTable, from: usize, total_tokens: usize) -> usize {
        let grow = self
            .alloc
            .blocks_for(total_tokens)
            .saturating_sub(table.blocks().len());
        grow + usize::from(self.shared_at(table, from).is_some())
    }

    /// The block holding position `pos` when another holder shares it.
    fn shared_at(&self, table: &BlockTable, pos: usize) -> Option<(usize, u32)> {
        let i = pos / BLOCK_SIZE;
        let b = *table.blocks().get(i)?;
        (self.alloc.ref_count(b) > 1).then_some((i, b))
    }

    /// Copy-on-write: when the block holding position `pos` is shared, gives `table` a fresh
    /// block, calls `copy(src, dst)` to fill it and drops the shared reference.
    pub fn make_writable(
        &mut self,
        table: &mut BlockTable,
        pos: usize,
        copy: &mut dyn FnMut(u32, u32) -> Result<()>,
    ) -> Result<()> {
        let Some((i, src)) = self.shared_at(table, pos) else {
            return Ok(());
        };
        self.make_free(1);
        let dst = self.alloc.allocate_n(1)?[0];
        if let Err(e) = copy(src, dst) {
            self.alloc.release(dst)?;
            return Err(e);
        }
        table.replace_block(i, dst);
        self.alloc.release(src)
    }
}
