//! The prefix cache: full KV blocks addressed by a salted hash chain of their tokens.
//!
//! Block `i` of a sequence is keyed by `H(key(i-1), tokens of block i)`, with `H` SipHash
//! under random per-process keys (std's `RandomState`), so nobody can aim for a collision.
//! An entry also stores its parent key and tokens, and a lookup compares them, so even an
//! accidental collision can never hand out the wrong KV. The cache holds one reference on
//! each cached block; a block whose only reference is the cache's is unreferenced and may be
//! evicted, least recently used first.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Key of the (empty) prefix before the first block.
pub const ROOT: u64 = 0;

#[derive(Debug, Clone)]
struct Entry {
    block: u32,
    parent: u64,
    tokens: Vec<u32>,
    last_used: u64,
}

/// Cached full blocks by content.
#[derive(Debug, Clone)]
pub struct PrefixCache {
    salt: RandomState,
    by_key: HashMap<u64, Entry>,
    by_block: HashMap<u32, u64>,
    tick: u64,
}

impl Default for PrefixCache {
    fn default() -> Self {
        Self::new()
    }
}

impl PrefixCache {
    /// An empty cache with fresh random hash keys.
    pub fn new() -> Self {
        Self {
            salt: RandomState::new(),
            by_key: HashMap::new(),
            by_block: HashMap::new(),
            tick: 0,
        }
    }

    /// Key of a block holding `tokens` after the prefix keyed `parent`.
    pub fn key(&self, parent: u64, tokens: &[u32]) -> u64 {
        // 0 is reserved for the root.
        self.salt.hash_one((parent, tokens)).max(1)
    }

    /// The cached block for `tokens` after `parent` (its key is `key`), marked as just used.
    pub fn lookup(&mut self, key: u64, parent: u64, tokens: &[u32]) -> Option<u32> {
        self.tick += 1;
        let e = self.by_key.get_mut(&key)?;
        if e.parent != parent || e.tokens != tokens {
            return None;
        }
        e.last_used = self.tick;
        Some(e.block)
    }

    /// Records `block` as holding `tokens` after `parent`. Returns false (and records nothing)
    /// when the key is already cached or the block already is; on true the caller gives the
    /// cache a reference on the block.
    pub fn insert(&mut self, key: u64, parent: u64, tokens: &[u32], block: u32) -> bool {
        if self.by_key.contains_key(&key) || self.by_block.contains_key(&block) {
            return false;
        }
        self.tick += 1;
        self.by_key.insert(
            key,
            Entry {
                block,
                parent,
                tokens: tokens.to_vec(),
                last_used: self.tick,
            },
        );
        self.by_block.insert(block, key);
        true
    }

    /// Whether `block` is in the cache.
    pub fn contains_block(&self, block: u32) -> bool {
        self.by_block.contains_key(&block)
    }

    /// Forgets `block`; true when it was cached (the caller drops the cache's reference).
    pub fn remove_block(&mut self, block: u32) -> bool {
        match self.by_block.remove(&block) {
            Some(key) => {
                self.by_key.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Cached blocks for which `unreferenced(block)` holds, least recently used first.
    pub fn lru_candidates(&self, unreferenced: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut c: Vec<(u64, u32)> = self
            .by_key
            .values()
            .filter(|e| unreferenced(e.block))
            .map(|e| (e.last_used, e.block))
            .collect();
        c.sort_unstable();
        c.into_iter().map(|(_, b)| b).collect()
    }

    /// Number of cached blocks.
    pub fn len(&self) -> usize {
        self.by_block.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.by_block.is_empty()
    }
}
