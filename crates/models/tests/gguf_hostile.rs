//! Hostile and malformed GGUF files: every case must be an `Err` naming the problem,
//! never a panic or a huge allocation.

mod gguf_common;

use gguf_common::{assert_rejects, parse_err, small_valid_file, B};
use marlin_models::gguf::GgufFile;
use marlin_models::Error;

/// One F32 tensor [8] at offset 0 after `kvs` (already-encoded key/values).
fn one_tensor(kvs: B, n_kv: u64, name: &str, dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut b = B::header(3, 1, n_kv)
        .raw(&kvs.0)
        .tensor(name, dims, ty, offset);
    b = b.pad(32).data(64);
    b.0
}

fn f32_tensor(dims: &[u64], ty: u32) -> Vec<u8> {
    one_tensor(B::default(), 0, "t", dims, ty, 0)
}

#[test]
fn every_truncation_of_a_valid_file_is_rejected() {
    let bytes = small_valid_file();
    let full = GgufFile::from_bytes(&bytes).unwrap();
    let needed = full
        .tensors()
        .iter()
        .map(|t| full.data_offset() + t.offset + t.nbytes)
        .max()
        .unwrap() as usize;
    for len in 0..needed {
        let msg = parse_err(&bytes[..len]);
        assert!(
            msg.contains("truncated")
                || msg.contains("too small")
                || msg.contains("past end")
                || msg.contains("impossible")
                || msg.contains("are left"),
            "prefix {len}: {msg}"
        );
    }
    // Only the trailing padding after the last tensor may go.
    for len in needed..=bytes.len() {
        assert!(GgufFile::from_bytes(&bytes[..len]).is_ok(), "prefix {len}");
    }
}

#[test]
fn bad_magic_and_versions() {
    assert_rejects(b"", &["too small"]);
    assert_rejects(b"GGU", &["too small"]);
    assert_rejects(b"GGUF", &["truncated", "version"]);
    assert_rejects(&B(b"GGML".to_vec()).u32(3).u64(0).u64(0).0, &["bad magic"]);
    assert_rejects(&B::header(0, 0, 0).0, &["version 0"]);
    assert_rejects(&B::header(1, 0, 0).0, &["version 1", "not supported"]);
    assert_rejects(&B::header(4, 0, 0).0, &["version 4", "newer"]);
    assert_rejects(&B::header(0x0300_0000, 0, 0).0, &["byte-swapped"]);
    // v2 and v3 with nothing in them are fine.
    assert!(GgufFile::from_bytes(&B::header(2, 0, 0).0).is_ok());
    assert!(GgufFile::from_bytes(&B::header(3, 0, 0).0).is_ok());
}

#[test]
fn huge_counts() {
    assert_rejects(
        &B::header(3, u64::MAX, 0).0,
        &["tensor count", "impossible"],
    );
    assert_rejects(
        &B::header(3, 0, u64::MAX).0,
        &["metadata count", "impossible"],
    );
    assert_rejects(&B::header(3, 1 << 40, 1).data(64).0, &["tensor count"]);
    // Claims two entries but holds one.
    let b = B::header(3, 0, 2).kv_u32("a", 1).kv_u32("b", 2);
    let cut = b.0.len() - 4;
    assert_rejects(&b.0[..cut], &["truncated", "key `b`"]);
}

#[test]
fn huge_string_and_array_lengths() {
    // The 32-byte file with a 2^48-byte key.
    let b = B::header(3, 0, 1).u64(1 << 48);
    assert_eq!(b.0.len(), 32);
    assert_rejects(&b.0, &["metadata count 1 is impossible"]);
    assert_rejects(&b.data(16).0, &["metadata key 0", "exceeds the limit"]);
    let b = B::header(3, 0, 1).u64(1000).raw(b"abcdefgh");
    assert_rejects(&b.0, &["metadata key 0", "only 8 are left"]);
    let b = B::header(3, 0, 1).str("k").u32(8).u64(u64::MAX);
    assert_rejects(&b.0, &["key `k`", "exceeds the limit"]);
    // A tiny file with an array of 2^63 elements.
    let b = B::header(3, 0, 1).str("k").u32(9).u32(0).u64(1 << 63);
    assert_eq!(b.0.len(), 49);
    assert_rejects(&b.0, &["key `k`", "exceeds the limit"]);
    // A plausible count, but more than the bytes left.
    let b = B::header(3, 0, 1).str("k").u32(9).u32(4).u64(1000).u32(1);
    assert_rejects(
        &b.0,
        &["key `k`", "needs at least 4000 bytes", "only 4 are left"],
    );
    let b = B::header(3, 0, 1).str("k").u32(9).u32(8).u64(100).str("x");
    assert_rejects(&b.0, &["key `k`", "needs at least 800 bytes"]);
    let b = B::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(8)
        .u64(2)
        .str("x")
        .u64(99);
    assert_rejects(&b.0, &["key `k`[1]", "length 99", "only 0 are left"]);
}

#[test]
fn bad_values() {
    let b = B::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(9)
        .u64(1)
        .u32(4)
        .u64(0);
    assert_rejects(&b.0, &["key `k`", "nested arrays"]);
    assert_rejects(
        &B::header(3, 0, 1).str("k").u32(13).u32(0).0,
        &["unknown value type id 13"],
    );
    assert_rejects(
        &B::header(3, 0, 1).str("k").u32(7).u8(2).0,
        &["invalid bool byte 2"],
    );
    let b = B::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(7)
        .u64(3)
        .raw(&[0, 1, 5]);
    assert_rejects(&b.0, &["key `k`", "invalid bool byte 5"]);
    let b = B::header(3, 0, 1).str("k").u32(8).u64(2).raw(&[0xff, 0xfe]);
    assert_rejects(&b.0, &["key `k`", "not valid UTF-8"]);
    let b = B::header(3, 0, 1).u64(2).raw(&[0xc3, 0x28]).u32(4).u32(1);
    assert_rejects(&b.0, &["metadata key 0", "UTF-8"]);
}

#[test]
fn bad_keys() {
    assert_rejects(
        &B::header(3, 0, 1).str("").u32(4).u32(1).0,
        &["key 0 is empty"],
    );
    let b = B::header(3, 0, 2).kv_u32("a.b", 1).kv_str("a.b", "x");
    assert_rejects(&b.0, &["duplicate metadata key `a.b`"]);
}

#[test]
fn bad_alignment() {
    for (align, words) in [
        (0u32, "power of two"),
        (3, "power of two"),
        (1 << 21, "power of two"),
    ] {
        let kv = B::default().kv_u32("general.alignment", align);
        assert_rejects(
            &one_tensor(kv, 1, "t", &[8], 0, 0),
            &["general.alignment", words],
        );
    }
    let kv = B::default().str("general.alignment").u32(5).u32(32);
    assert_rejects(
        &one_tensor(kv, 1, "t", &[8], 0, 0),
        &["must be u32, found i32"],
    );
    let kv = B::default().kv_u32("general.alignment", 64);
    let b = B::header(3, 1, 1)
        .raw(&kv.0)
        .tensor("t", &[8], 0, 32)
        .pad(64)
        .data(128);
    assert_rejects(
        &b.0,
        &[
            "tensor `t`",
            "offset 32 is not a multiple of the alignment 64",
        ],
    );
}

#[test]
fn bad_dims() {
    let five = f32_tensor(&[1, 1, 1, 1, 1], 0);
    assert_rejects(&five, &["tensor `t`", "n_dims 5"]);
    assert_rejects(&f32_tensor(&[], 0), &["tensor `t`", "n_dims 0"]);
    assert_rejects(&f32_tensor(&[8, 0], 0), &["tensor `t`", "dim 1 = 0"]);
    assert_rejects(
        &f32_tensor(&[1 << 63, 4], 0),
        &["dim 0 = 9223372036854775808"],
    );
    assert_rejects(
        &f32_tensor(&[1 << 62, 4], 0),
        &["element count", "overflows"],
    );
    assert_rejects(&f32_tensor(&[1 << 61, 2], 0), &["byte size", "overflows"]);
    // Dims that multiply past the real data: the "Bleeding Llama" shape.
    assert_rejects(
        &f32_tensor(&[1 << 20, 1 << 20], 0),
        &["extends past end of file"],
    );
    // ne0 not a whole number of Q4_0 blocks.
    assert_rejects(
        &f32_tensor(&[5, 2], 2),
        &["row length ne0 = 5", "Q4_0 block size 32"],
    );
}

#[test]
fn bad_types() {
    assert_rejects(
        &f32_tensor(&[8], 99),
        &["tensor `t`", "unknown ggml type id 99"],
    );
    assert_rejects(
        &f32_tensor(&[32], 4),
        &["tensor `t`", "type id 4 (Q4_2)", "removed"],
    );
    assert_rejects(&f32_tensor(&[32], 36), &["IQ4_NL_4_4", "removed"]);
    // A real ggml type the engine lacks parses, but cannot become a QTensor.
    let b = B::header(3, 1, 0)
        .tensor("iq", &[256], 16, 0)
        .pad(32)
        .data(66);
    let f = GgufFile::from_bytes(&b.0).unwrap();
    assert_eq!(f.tensors()[0].ggml_type.name, "IQ2_XXS");
    assert_eq!(f.tensor_bytes("iq").unwrap().len(), 66);
    let e = f.tensor("iq").unwrap_err().to_string();
    assert!(e.contains("IQ2_XXS") && e.contains("cannot execute"), "{e}");
    assert!(matches!(f.tensor("nope"), Err(Error::MissingTensor(n)) if n == "nope"));
}

#[test]
fn bad_offsets_and_overlaps() {
    let past = f32_tensor(&[32], 0);
    assert_rejects(
        &past,
        &["tensor `t`: data [64, 192) extends past end of file (size 128)"],
    );
    let wrap = one_tensor(B::default(), 0, "t", &[8], 0, u64::MAX - 31);
    assert_rejects(&wrap, &["tensor `t`", "overflows"]);
    let b = B::header(3, 2, 0)
        .tensor("x", &[16], 0, 0)
        .tensor("y", &[8], 0, 32)
        .pad(32)
        .data(128);
    assert_rejects(&b.0, &["tensors `x` [", "`y` [", "overlap"]);
    let b = B::header(3, 2, 0)
        .tensor("x", &[8], 0, 0)
        .tensor("y", &[8], 0, 0)
        .pad(32)
        .data(64);
    assert_rejects(&b.0, &["overlap"]);
    // Disjoint, out of file order and with a hole: accepted (the spec allows it).
    let b = B::header(3, 2, 0)
        .tensor("x", &[8], 0, 64)
        .tensor("y", &[8], 0, 0)
        .pad(32)
        .data(96);
    let f = GgufFile::from_bytes(&b.0).unwrap();
    assert_eq!(f.tensor("x").unwrap().bytes()[0], 64);
}

#[test]
fn bad_tensor_names() {
    let b = B::header(3, 2, 0)
        .tensor("x", &[8], 0, 0)
        .tensor("x", &[8], 0, 32)
        .pad(32)
        .data(64);
    assert_rejects(&b.0, &["duplicate tensor name `x`"]);
    let long = "n".repeat(64);
    let b = one_tensor(B::default(), 0, &long, &[8], 0, 0);
    assert_rejects(&b, &["tensor info 0", "name length 64 is longer than 63"]);
    assert!(GgufFile::from_bytes(&one_tensor(B::default(), 0, &long[..63], &[8], 0, 0)).is_ok());
    assert_rejects(
        &one_tensor(B::default(), 0, "a\0b", &[8], 0, 0),
        &["control characters"],
    );
    assert_rejects(
        &one_tensor(B::default(), 0, "", &[8], 0, 0),
        &["empty tensor name"],
    );
}

#[test]
fn random_mutations_never_panic() {
    let base = small_valid_file();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..3000 {
        let mut b = base.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] = match next() % 3 {
                0 => next() as u8,
                1 => 0xff,
                _ => b[i].wrapping_add(1),
            };
        }
        match GgufFile::from_bytes(&b) {
            Ok(f) => {
                ok += 1;
                for t in f.tensors() {
                    let bytes = f.tensor_bytes(&t.name).unwrap();
                    assert_eq!(bytes.len() as u64, t.nbytes);
                    if let Ok(q) = f.tensor(&t.name) {
                        assert_eq!(q.bytes().len() as u64, t.nbytes);
                    }
                }
            }
            Err(_) => err += 1,
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok} err {err}");
}
