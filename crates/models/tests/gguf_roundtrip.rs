//! Writer → reader round trips: every value type, several tensor formats and ranks,
//! custom alignment, atomic replacement, and the writer's own checks.

mod gguf_common;

use gguf_common::tempdir::TempDir;
use gguf_common::{owned, small_valid_file};
use marlin_core::QuantFormat;
use marlin_models::gguf::{GgufFile, GgufWriter, MetaArray, MetaValue};

fn all_values() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("t.u8", MetaValue::U8(200)),
        ("t.i8", MetaValue::I8(-5)),
        ("t.u16", MetaValue::U16(60000)),
        ("t.i16", MetaValue::I16(-30000)),
        ("t.u32", MetaValue::U32(4_000_000_000)),
        ("t.i32", MetaValue::I32(-2_000_000_000)),
        ("t.f32", MetaValue::F32(1.5e-5)),
        ("t.bool", MetaValue::Bool(true)),
        ("t.str", MetaValue::String("héllo <|im_end|>".into())),
        ("t.u64", MetaValue::U64(u64::MAX)),
        ("t.i64", MetaValue::I64(i64::MIN)),
        ("t.f64", MetaValue::F64(-2.25)),
        ("a.u8", MetaValue::Array(MetaArray::U8(vec![0, 255]))),
        ("a.i8", MetaValue::Array(MetaArray::I8(vec![-128, 127]))),
        ("a.u16", MetaValue::Array(MetaArray::U16(vec![1, 65535]))),
        ("a.i16", MetaValue::Array(MetaArray::I16(vec![-1]))),
        ("a.u32", MetaValue::Array(MetaArray::U32(vec![7, 8, 9]))),
        ("a.i32", MetaValue::Array(MetaArray::I32(vec![-7, 3]))),
        ("a.f32", MetaValue::Array(MetaArray::F32(vec![0.25, -1e10]))),
        (
            "a.bool",
            MetaValue::Array(MetaArray::Bool(vec![true, false])),
        ),
        (
            "a.str",
            MetaValue::Array(MetaArray::String(vec!["".into(), "Ġa b".into()])),
        ),
        ("a.u64", MetaValue::Array(MetaArray::U64(vec![1 << 40]))),
        ("a.i64", MetaValue::Array(MetaArray::I64(vec![-(1 << 40)]))),
        ("a.f64", MetaValue::Array(MetaArray::F64(vec![]))),
    ]
}

#[test]
fn round_trip_every_value_type_and_tensor() {
    let dir = TempDir::new("gguf-rt");
    let path = dir.path().join("m.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", "test").unwrap();
    w.set("general.alignment", 64u32).unwrap();
    for (k, v) in all_values() {
        w.set(k, v).unwrap();
    }
    let f32s: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let q4k: Vec<u8> = (0..2 * 144).map(|i| (i * 7) as u8).collect();
    let tensors = [
        ("a.weight", owned(QuantFormat::F32, &[3, 4], f32s)),
        ("b.weight", owned(QuantFormat::Q4_K, &[2, 256], q4k)),
        ("c.weight", owned(QuantFormat::BF16, &[5], vec![3; 10])),
        (
            "d.weight",
            owned(QuantFormat::Q8_0, &[2, 1, 3, 32], vec![9; 6 * 34]),
        ),
        (
            "e.weight",
            owned(QuantFormat::MXFP4, &[1, 1, 32], vec![4; 17]),
        ),
    ];
    for (name, t) in &tensors {
        w.add_tensor(name, t.clone()).unwrap();
    }
    w.write_file(&path).unwrap();

    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.architecture().unwrap(), "test");
    let md = f.metadata();
    for (k, v) in all_values() {
        assert_eq!(md.get(k), Some(&v), "{k}");
    }
    assert_eq!(md.len(), all_values().len() + 2);
    assert_eq!(f.tensors().len(), tensors.len());
    let mut expect_offset = 0;
    for ((name, want), info) in tensors.iter().zip(f.tensors()) {
        assert_eq!(&info.name, name);
        assert_eq!(
            info.offset, expect_offset,
            "{name}: offsets are the padded running sum"
        );
        expect_offset += info.nbytes.next_multiple_of(64);
        let got = f.tensor(name).unwrap();
        assert_eq!(got.format, want.format, "{name}");
        assert_eq!(got.shape, want.shape, "{name}");
        assert_eq!(got.bytes(), want.bytes(), "{name}");
        let dims: Vec<u64> = want.shape.iter().rev().map(|&d| d as u64).collect();
        assert_eq!(info.dims, dims, "{name}: ggml dims are the shape reversed");
    }
    assert_eq!(f.file_size(), f.data_offset() + expect_offset);
    let shapes: Vec<_> = f.summary().tensors.into_iter().map(|t| t.shape).collect();
    assert_eq!(shapes[3], vec![2, 1, 3, 32]);
}

#[test]
fn version_2_files_read_the_same() {
    let mut bytes = small_valid_file();
    bytes[4] = 2;
    let f = GgufFile::from_bytes(&bytes).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.metadata().get_u32("llama.block_count").unwrap(), 2);
    assert_eq!(f.tensor("q.weight").unwrap().bytes(), &[7; 36][..]);
}

#[test]
fn atomic_write_replaces_and_leaves_no_temp_files() {
    let dir = TempDir::new("gguf-atomic");
    let path = dir.path().join("x.gguf");
    std::fs::write(&path, b"old contents").unwrap();
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama").unwrap();
    w.write_file(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.architecture().unwrap(), "llama");
    assert!(f.tensors().is_empty());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("x.gguf")]);
    // A failed write leaves the old file alone and no temp file behind.
    let mut bad = GgufWriter::new();
    bad.set("general.alignment", 3u32).unwrap();
    assert!(bad.write_file(&path).is_err());
    assert_eq!(
        GgufFile::open(&path).unwrap().architecture().unwrap(),
        "llama"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn writer_refuses_what_the_reader_would_refuse() {
    let mut w = GgufWriter::new();
    w.set("k", 1u32).unwrap();
    assert!(w
        .set("k", 2u32)
        .unwrap_err()
        .to_string()
        .contains("duplicate metadata key"));
    assert!(w.set("", 2u32).is_err());
    let t = owned(QuantFormat::F32, &[2], vec![0; 8]);
    w.add_tensor("t", t.clone()).unwrap();
    let e = w.add_tensor("t", t.clone()).unwrap_err().to_string();
    assert!(e.contains("duplicate tensor name `t`"), "{e}");
    assert!(w.add_tensor(&"n".repeat(64), t.clone()).is_err());
    let five = owned(QuantFormat::F32, &[1, 1, 1, 1, 2], vec![0; 8]);
    assert!(w
        .add_tensor("five", five)
        .unwrap_err()
        .to_string()
        .contains("1..=4"));
    let mut w = GgufWriter::new();
    w.set("general.alignment", 48u32).unwrap();
    assert!(w
        .to_bytes()
        .unwrap_err()
        .to_string()
        .contains("power of two"));
}

/// Writes the fuzz seed corpus (run by hand):
/// `MARLIN_FUZZ_SEEDS=$PWD/fuzz/seeds cargo test -p marlin-models --test gguf_roundtrip -- --ignored`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(root) = std::env::var_os("MARLIN_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(root).join("gguf_parse");
    std::fs::create_dir_all(&dir).unwrap();
    let small = small_valid_file();
    let mut v2 = small.clone();
    v2[4] = 2;
    let mut values = GgufWriter::new();
    for (k, v) in all_values() {
        values.set(k, v).unwrap();
    }
    let mut ranks = GgufWriter::new();
    ranks.set("general.alignment", 8u32).unwrap();
    ranks
        .add_tensor("d", owned(QuantFormat::Q8_0, &[2, 1, 1, 32], vec![1; 68]))
        .unwrap();
    ranks
        .add_tensor("k", owned(QuantFormat::Q6_K, &[1, 256], vec![2; 210]))
        .unwrap();
    let seeds = [
        ("small.gguf", small),
        ("v2.gguf", v2),
        ("values.gguf", values.to_bytes().unwrap()),
        ("ranks.gguf", ranks.to_bytes().unwrap()),
    ];
    for (name, bytes) in seeds {
        assert!(GgufFile::from_bytes(&bytes).is_ok(), "{name}");
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
