//! Block allocator and block table invariants.

use marlin_engine::blocks::{BlockAllocator, BlockTable, OutOfBlocks, BLOCK_SIZE};
use marlin_engine::Error;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn allocate_until_exhausted_then_free_everything() {
    let mut a = BlockAllocator::new(4);
    assert_eq!(a.block_size(), BLOCK_SIZE);
    let ids: Vec<u32> = (0..4).map(|_| a.allocate().unwrap()).collect();
    assert_eq!(ids, vec![0, 1, 2, 3]);
    assert_eq!(a.num_free(), 0);
    assert_eq!(a.allocate(), None);
    for &id in &ids {
        assert_eq!(a.ref_count(id), 1);
        a.release(id).unwrap();
        assert_eq!(a.ref_count(id), 0);
    }
    assert_eq!(a.num_free(), 4);
}

#[test]
fn bad_retain_and_release_are_errors() {
    let mut a = BlockAllocator::new(2);
    assert!(matches!(
        a.retain(0),
        Err(Error::InvalidBlock { id: 0, .. })
    ));
    assert!(matches!(
        a.release(1),
        Err(Error::InvalidBlock { id: 1, .. })
    ));
    assert!(matches!(
        a.release(7),
        Err(Error::InvalidBlock { id: 7, .. })
    ));
    let id = a.allocate().unwrap();
    a.release(id).unwrap();
    assert!(a.release(id).is_err(), "double release");
    assert_eq!(a.num_free(), 2);
}

#[test]
fn reserve_allocates_whole_blocks_and_is_all_or_nothing() {
    let mut a = BlockAllocator::with_block_size(5, 4);
    let mut t = BlockTable::new();
    t.reserve(&mut a, 1).unwrap();
    assert_eq!((t.blocks().len(), t.num_tokens()), (1, 1));
    t.reserve(&mut a, 4).unwrap();
    assert_eq!(t.blocks().len(), 1);
    t.reserve(&mut a, 9).unwrap();
    assert_eq!(t.blocks(), &[0, 1, 2]);
    assert_eq!(t.num_tokens(), 9);
    t.reserve(&mut a, 3).unwrap();
    assert_eq!(t.num_tokens(), 9, "a smaller total changes nothing");

    let err = t.reserve(&mut a, 4 * 6).unwrap_err();
    assert_eq!(err, OutOfBlocks { needed: 3, free: 2 });
    assert_eq!(a.num_free(), 2, "nothing allocated on failure");
    assert_eq!(t.blocks().len(), 3);
    let e: Error = err.into();
    assert!(e.to_string().contains("3 needed"), "{e}");

    t.release_all(&mut a);
    assert_eq!((t.blocks().len(), t.num_tokens()), (0, 0));
    assert_eq!(a.num_free(), 5);
}

#[test]
fn fork_shares_blocks_until_both_release() {
    let mut a = BlockAllocator::with_block_size(6, 2);
    let mut t = BlockTable::new();
    t.reserve(&mut a, 5).unwrap();
    let mut f = t.fork(&mut a).unwrap();
    assert_eq!(f.blocks(), t.blocks());
    assert_eq!(f.num_tokens(), 5);
    assert!(t.blocks().iter().all(|&id| a.ref_count(id) == 2));
    f.reserve(&mut a, 8).unwrap();
    assert_eq!(f.blocks().len(), 4);
    assert_eq!(a.ref_count(f.blocks()[3]), 1);
    t.release_all(&mut a);
    assert_eq!(a.num_free(), 2);
    assert!(f.blocks().iter().all(|&id| a.ref_count(id) == 1));
    f.release_all(&mut a);
    assert_eq!(a.num_free(), 6);
}

#[test]
fn fork_with_wrong_allocator_fails_cleanly() {
    let mut a = BlockAllocator::new(4);
    let mut t = BlockTable::new();
    t.reserve(&mut a, 40).unwrap();
    let mut other = BlockAllocator::new(4);
    other.allocate().unwrap();
    assert!(t.fork(&mut other).is_err());
    assert_eq!(other.ref_count(0), 1, "partial retains rolled back");
    t.release_all(&mut a);
    assert_eq!(a.num_free(), 4);
}

#[test]
fn truncate_releases_trailing_blocks() {
    let mut a = BlockAllocator::with_block_size(8, 4);
    let mut t = BlockTable::new();
    t.reserve(&mut a, 13).unwrap();
    assert_eq!(t.blocks().len(), 4);
    t.truncate(&mut a, 8).unwrap();
    assert_eq!((t.blocks().len(), t.num_tokens()), (2, 8));
    assert_eq!(a.num_free(), 6);
    t.truncate(&mut a, 20).unwrap();
    assert_eq!(t.num_tokens(), 8);
    t.release_all(&mut a);
    assert_eq!(a.num_free(), 8);
}

#[test]
fn random_workload_keeps_ref_counts_consistent() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut a = BlockAllocator::with_block_size(32, 4);
    let mut tables: Vec<BlockTable> = Vec::new();
    for _ in 0..2000 {
        match rng.random_range(0..4) {
            0 => tables.push(BlockTable::new()),
            1 if !tables.is_empty() => {
                let i = rng.random_range(0..tables.len());
                let grow = tables[i].num_tokens() + rng.random_range(1..10);
                let before = a.num_free();
                if tables[i].reserve(&mut a, grow).is_err() {
                    assert_eq!(a.num_free(), before);
                }
            }
            2 if !tables.is_empty() => {
                let i = rng.random_range(0..tables.len());
                if let Ok(f) = tables[i].fork(&mut a) {
                    tables.push(f);
                }
            }
            3 if !tables.is_empty() => {
                let i = rng.random_range(0..tables.len());
                let mut t = tables.swap_remove(i);
                t.release_all(&mut a);
            }
            _ => {}
        }
        let mut expect = vec![0u32; a.num_blocks()];
        for t in &tables {
            for &id in t.blocks() {
                expect[id as usize] += 1;
            }
        }
        for (id, &n) in expect.iter().enumerate() {
            assert_eq!(a.ref_count(id as u32), n);
        }
        let free = expect.iter().filter(|&&n| n == 0).count();
        assert_eq!(a.num_free(), free);
    }
    for mut t in tables {
        t.release_all(&mut a);
    }
    assert_eq!(a.num_free(), 32);
}
