//! A state-machine test of `KvPool` (reliability.md T12): random reserve, prefix match,
//! offer to the cache, fork, copy-on-write, truncate-free and release against a shadow
//! model; after every operation each block's ref count equals its holders (tables plus the
//! cache), free + held == total, and at the end everything is free or merely cached.

use std::collections::HashMap;

use marlin_engine::blocks::{BlockTable, BLOCK_SIZE};
use marlin_engine::kv_pool::KvPool;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// A live sequence: its tokens (all "computed"), table and key chain.
struct Seq {
    tokens: Vec<u32>,
    table: BlockTable,
    keys: Vec<u64>,
}

fn check(pool: &KvPool, seqs: &[Seq]) {
    let mut holders: HashMap<u32, u32> = HashMap::new();
    for s in seqs {
        for &b in s.table.blocks() {
            *holders.entry(b).or_default() += 1;
        }
    }
    let mut held = 0;
    for b in 0..pool.num_blocks() as u32 {
        let want = holders.get(&b).copied().unwrap_or(0) + u32::from(pool.is_cached(b));
        assert_eq!(pool.allocator().ref_count(b), want, "block {b}");
        held += usize::from(want > 0);
    }
    assert_eq!(pool.num_free() + held, pool.num_blocks());
}

#[test]
fn random_operations_keep_ref_counts_exact() {
    let mut rng = Rng(0xDEAD_BEEF_1234_5678);
    let mut pool = KvPool::new(48, true);
    let mut seqs: Vec<Seq> = Vec::new();
    let (mut hits, mut cows, mut ooms) = (0, 0, 0);
    for _ in 0..20_000 {
        match rng.below(7) {
            // A new sequence: a prompt from a few shared prefixes, matched then reserved.
            0 | 1 => {
                let base = rng.below(3) as u32;
                let len = 1 + rng.below(60);
                let tokens: Vec<u32> = (0..len as u32).map(|i| base * 1000 + i / 3).collect();
                let mut table = BlockTable::new();
                let hit = pool.match_prefix(&mut table, &tokens);
                hits += usize::from(hit > 0);
                if pool.reserve(&mut table, tokens.len()).is_err() {
                    ooms += 1;
                    pool.release(&mut table);
                    continue;
                }
                let mut keys = pool.chain(&tokens, hit);
                pool.offer_full_blocks(&table, &tokens, tokens.len(), &mut keys);
                seqs.push(Seq {
                    tokens,
                    table,
                    keys,
                });
            }
            // Append a token (copy-on-write when the last block is shared).
            2 | 3 if !seqs.is_empty() => {
                let i = rng.below(seqs.len());
                let s = &mut seqs[i];
                let pos = s.tokens.len();
                let mut copied = 0;
                let w = pool.make_writable(&mut s.table, pos, &mut |a, b| {
                    assert_ne!(a, b);
                    copied += 1;
                    Ok(())
                });
                if w.is_err() || pool.reserve(&mut s.table, pos + 1).is_err() {
                    ooms += 1;
                    continue;
                }
                cows += copied;
                s.tokens.push(7);
                pool.offer_full_blocks(&s.table, &s.tokens, s.tokens.len(), &mut s.keys);
            }
            // Fork (n > 1).
            4 if !seqs.is_empty() => {
                let i = rng.below(seqs.len());
                let table = pool.fork(&seqs[i].table).unwrap();
                let (tokens, keys) = (seqs[i].tokens.clone(), seqs[i].keys.clone());
                seqs.push(Seq {
                    tokens,
                    table,
                    keys,
                });
            }
            // Finish or cancel.
            _ if !seqs.is_empty() => {
                let i = rng.below(seqs.len());
                let mut s = seqs.swap_remove(i);
                pool.release(&mut s.table);
            }
            _ => {}
        }
        check(&pool, &seqs);
    }
    for s in &mut seqs {
        pool.release(&mut s.table);
    }
    seqs.clear();
    check(&pool, &seqs);
    assert_eq!(pool.num_used(), 0);
    assert_eq!(pool.num_free() + pool.num_cached(), pool.num_blocks());
    assert!(
        hits > 100 && cows > 100 && ooms > 0,
        "hits {hits} cows {cows} ooms {ooms}"
    );
    assert!(pool.stats().evicted > 0);
    // A full-pool reservation evicts every cached block.
    let mut t = BlockTable::new();
    pool.reserve(&mut t, pool.num_blocks() * BLOCK_SIZE)
        .unwrap();
    assert_eq!(pool.num_cached(), 0);
    pool.release(&mut t);
    assert_eq!(pool.num_free(), pool.num_blocks());
}
