//! Paged KV storage: writes land in the slot the block table names, reads round-trip through
//! f16, and bad block tables are errors.

use half::f16;
use marlin_cpu::kv::{KvDtype, KvLayout, PagedKv};
use marlin_cpu::Error;

const LAYOUT: KvLayout = KvLayout {
    block_size: 4,
    n_kv_heads: 2,
    head_dim: 3,
};

fn token(pos: usize, sign: f32) -> Vec<f32> {
    (0..6).map(|i| sign * (pos * 10 + i) as f32 * 0.5).collect()
}

#[test]
fn write_then_read_through_block_table() {
    let mut kv = PagedKv::new(LAYOUT, 5);
    assert_eq!((kv.num_blocks(), kv.dtype()), (5, KvDtype::F16));
    let table = [3u32, 0, 4];
    for pos in 0..12 {
        kv.write(&table, pos, &token(pos, 1.0), &token(pos, -1.0))
            .unwrap();
    }
    for pos in 0..12 {
        let k: Vec<f32> = kv
            .key(&table, pos)
            .unwrap()
            .iter()
            .map(|x| x.to_f32())
            .collect();
        let v: Vec<f32> = kv
            .value(&table, pos)
            .unwrap()
            .iter()
            .map(|x| x.to_f32())
            .collect();
        assert_eq!(k, token(pos, 1.0));
        assert_eq!(v, token(pos, -1.0));
        let (mut kf, mut vf) = (vec![0.0; 6], vec![0.0; 6]);
        kv.read(&table, pos, &mut kf, &mut vf).unwrap();
        assert_eq!((kf, vf), (k, v));
    }
    // Position 5 is block table[1] = 0, slot 1: global slot 1.
    assert_eq!(kv.slot_index(&table, 5).unwrap(), 1);
    assert_eq!(kv.slot_index(&table, 2).unwrap(), 3 * 4 + 2);
}

#[test]
fn values_are_rounded_to_f16() {
    let mut kv = PagedKv::new(LAYOUT, 1);
    let k = [0.1f32, 1e-8, 70000.0, -3.3, 2.0, 0.333];
    kv.write(&[0], 3, &k, &k).unwrap();
    let got = kv.key(&[0], 3).unwrap();
    let want: Vec<f16> = k.iter().map(|&x| f16::from_f32(x)).collect();
    assert_eq!(got, &want[..]);
}

#[test]
fn write_errors() {
    let mut kv = PagedKv::new(LAYOUT, 2);
    let t = token(0, 1.0);
    assert!(matches!(
        kv.write(&[0], 4, &t, &t),
        Err(Error::MissingBlock {
            pos: 4,
            index: 1,
            len: 1
        })
    ));
    assert!(matches!(
        kv.write(&[0, 2], 4, &t, &t),
        Err(Error::BlockOutOfRange {
            id: 2,
            num_blocks: 2
        })
    ));
    assert!(matches!(
        kv.write(&[0], 0, &t[..5], &t),
        Err(Error::Shape { .. })
    ));
    assert!(kv.key(&[], 0).is_err());
    let mut short = vec![0.0; 5];
    assert!(kv.read(&[0], 0, &mut short, &mut [0.0; 6]).is_err());
}

#[test]
fn write_tokens_checks_every_block_first() {
    let mut kv = PagedKv::new(LAYOUT, 3);
    let k: Vec<f32> = (0..10).flat_map(|p| token(p, 1.0)).collect();
    assert!(kv.write_tokens(&[0, 9, 1], 0, &k, &k).is_err());
    assert_eq!(kv.key(&[0], 0).unwrap(), &[f16::ZERO; 6], "nothing written");
    kv.write_tokens(&[2, 0, 1], 1, &k[..9 * 6], &k[..9 * 6])
        .unwrap();
    for p in 1..10 {
        let got: Vec<f32> = kv
            .key(&[2, 0, 1], p)
            .unwrap()
            .iter()
            .map(|x| x.to_f32())
            .collect();
        assert_eq!(got, token(p - 1, 1.0));
    }
    assert!(kv.write_tokens(&[0], 0, &k[..7], &k[..7]).is_err());
}

#[test]
fn copy_block_duplicates_contents() {
    let mut kv = PagedKv::new(LAYOUT, 3);
    for pos in 0..4 {
        kv.write(&[1], pos, &token(pos, 1.0), &token(pos, 2.0))
            .unwrap();
    }
    kv.copy_block(1, 2).unwrap();
    for pos in 0..4 {
        assert_eq!(kv.key(&[2], pos).unwrap(), kv.key(&[1], pos).unwrap());
        assert_eq!(kv.value(&[2], pos).unwrap(), kv.value(&[1], pos).unwrap());
    }
    assert!(kv.copy_block(1, 3).is_err());
}

#[test]
fn degenerate_layouts() {
    let zero = KvLayout {
        block_size: 16,
        n_kv_heads: 0,
        head_dim: 64,
    };
    assert!(PagedKv::with_dtype(zero, 4, KvDtype::F16).is_err());
    assert_eq!(PagedKv::new(zero, 4).num_blocks(), 0);
    let huge = KvLayout {
        block_size: 16,
        n_kv_heads: 8,
        head_dim: 128,
    };
    assert!(PagedKv::with_dtype(huge, usize::MAX / 4, KvDtype::F16).is_err());
}
