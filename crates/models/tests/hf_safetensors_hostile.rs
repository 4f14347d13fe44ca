//! Malformed and hostile safetensors files: each must be an `Err` naming the problem.

use marlin_models::hf::{Dtype, SafetensorsFile};
use safetensors::tensor::TensorView;

/// 8-byte header length, the header, then `data` bytes.
fn st(header: &str, data: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend((0..data).map(|i| i as u8));
    b
}

#[track_caller]
fn rejects(bytes: &[u8], words: &[&str]) {
    let msg = match SafetensorsFile::from_bytes(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    for w in words {
        assert!(msg.contains(w), "message {msg:?} lacks {w:?}");
    }
}

fn valid() -> Vec<u8> {
    let a: Vec<u8> = (0..16).collect();
    let b = vec![1u8; 6];
    let views = vec![
        (
            "a".to_string(),
            TensorView::new(Dtype::F32, vec![2, 2], &a).unwrap(),
        ),
        (
            "b".to_string(),
            TensorView::new(Dtype::BF16, vec![3], &b).unwrap(),
        ),
    ];
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn valid_file_reads() {
    let f = SafetensorsFile::from_bytes(&valid()).unwrap();
    assert_eq!(f.names().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(
        f.tensor("a").unwrap().bytes(),
        &(0..16).collect::<Vec<u8>>()[..]
    );
    assert_eq!(f.tensor("b").unwrap().shape, vec![3]);
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = valid();
    for len in 0..bytes.len() {
        assert!(
            SafetensorsFile::from_bytes(&bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    rejects(&longer, &["does not cover the file exactly"]);
}

#[test]
fn hostile_headers() {
    rejects(b"", &["file too small (0 bytes)"]);
    rejects(&u64::MAX.to_le_bytes(), &["exceeds the 100 MB limit"]);
    let mut b = 1000u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    rejects(
        &b,
        &["header length 1000 extends past end of file (size 10)"],
    );
    let mut b = 2u64.to_le_bytes().to_vec();
    b.extend_from_slice(&[0xff, 0xfe]);
    rejects(&b, &["not UTF-8"]);
    rejects(&st("{nope", 0), &["header JSON"]);
    let q = r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}"#;
    rejects(&st(q, 2), &["header JSON"]);
}

#[test]
fn hostile_tensor_entries() {
    let overlap = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},
                      "b":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    rejects(
        &st(overlap, 16),
        &["tensor `b`: data starts at 0, expected 16 (overlap or hole)"],
    );
    let size = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#;
    rejects(
        &st(size, 12),
        &["tensor `a`: data offsets [0, 12) do not hold F32 [2, 2] (16 bytes)"],
    );
    let big = r#"{"a":{"dtype":"F32","shape":[4611686018427387904, 8],"data_offsets":[0,4]}}"#;
    rejects(&st(big, 4), &["tensor `a`", "overflows"]);
    let past = r#"{"a":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
    rejects(&st(past, 16), &["does not cover the file exactly"]);
    let dup = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                  "a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    rejects(&st(dup, 4), &["duplicate key `a`"]);
    let ten = (0..10)
        .map(|i| format!(r#""t{i}":{{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#))
        .collect::<Vec<_>>()
        .join(",");
    rejects(&st(&format!("{{{ten}}}"), 16), &["overlap or hole"]);
}

#[test]
fn random_mutations_never_panic() {
    let base = valid();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ok = 0;
    for _ in 0..3000 {
        let mut b = base.clone();
        let i = (next() % b.len() as u64) as usize;
        b[i] = next() as u8;
        if let Ok(f) = SafetensorsFile::from_bytes(&b) {
            ok += 1;
            for n in f.names().map(str::to_owned).collect::<Vec<_>>() {
                let raw = f.raw(&n).unwrap();
                let _ = raw.data.bytes().len();
                let _ = f.tensor(&n);
            }
        }
    }
    assert!(ok > 0);
}

/// Writes the safetensors fuzz seeds (run by hand):
/// `MARLIN_FUZZ_SEEDS=$PWD/fuzz/seeds cargo test -p marlin-models --test hf_safetensors_hostile -- --ignored`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(root) = std::env::var_os("MARLIN_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(root).join("safetensors_parse");
    std::fs::create_dir_all(&dir).unwrap();
    let h = vec![0u8; 8];
    let views = vec![
        (
            "x".to_string(),
            TensorView::new(Dtype::F16, vec![2, 2], &h).unwrap(),
        ),
        (
            "y".to_string(),
            TensorView::new(Dtype::I8, vec![8], &h).unwrap(),
        ),
        (
            "z".to_string(),
            TensorView::new(Dtype::F32, vec![], &h[..4]).unwrap(),
        ),
    ];
    let meta = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    let three = safetensors::serialize(views, Some(meta)).unwrap();
    for (name, bytes) in [("two.safetensors", valid()), ("three.safetensors", three)] {
        assert!(SafetensorsFile::from_bytes(&bytes).is_ok(), "{name}");
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
