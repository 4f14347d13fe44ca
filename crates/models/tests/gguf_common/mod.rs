//! Helpers shared by the GGUF tests: a hand-written byte builder and a small valid file.

#![allow(dead_code)]

pub mod tempdir;

use std::sync::Arc;

use marlin_core::{QTensor, QuantFormat, TensorData};
use marlin_models::gguf::{GgufFile, GgufWriter};

/// Builds GGUF bytes field by field, so tests can write any hostile value.
#[derive(Clone, Default)]
pub struct B(pub Vec<u8>);

impl B {
    /// Magic, version and the two counts.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        B(b"GGUF".to_vec()).u32(version).u64(n_tensors).u64(n_kv)
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A GGUF string (u64 length + bytes).
    pub fn str(self, s: &str) -> Self {
        self.u64(s.len() as u64).raw(s.as_bytes())
    }
    pub fn kv_u32(self, key: &str, v: u32) -> Self {
        self.str(key).u32(4).u32(v)
    }
    pub fn kv_str(self, key: &str, v: &str) -> Self {
        self.str(key).u32(8).str(v)
    }
    /// A tensor info record.
    pub fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut b = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            b = b.u64(d);
        }
        b.u32(ty).u64(offset)
    }
    /// Zero padding up to a multiple of `align`.
    pub fn pad(mut self, align: usize) -> Self {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
        self
    }
    /// `n` data bytes.
    pub fn data(mut self, n: usize) -> Self {
        self.0.extend((0..n).map(|i| i as u8));
        self
    }
}

/// Parse `bytes` expecting an error; returns its message.
pub fn parse_err(bytes: &[u8]) -> String {
    match GgufFile::from_bytes(bytes) {
        Ok(f) => panic!("expected an error, parsed {} tensors", f.tensors().len()),
        Err(e) => e.to_string(),
    }
}

/// Assert that parsing fails with a message containing every word of `words`.
#[track_caller]
pub fn assert_rejects(bytes: &[u8], words: &[&str]) {
    let msg = parse_err(bytes);
    for w in words {
        assert!(msg.contains(w), "message {msg:?} lacks {w:?}");
    }
}

/// An owned tensor from raw bytes.
pub fn owned(format: QuantFormat, shape: &[usize], bytes: Vec<u8>) -> QTensor {
    QTensor::new(format, shape.to_vec(), TensorData::Owned(Arc::new(bytes))).unwrap()
}

/// A small valid file: a few metadata types and three tensors of different formats.
pub fn small_valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama").unwrap();
    w.set("llama.block_count", 2u32).unwrap();
    w.set("general.name", "tiny").unwrap();
    w.set("tokenizer.ggml.tokens", vec!["a", "b", "<s>"])
        .unwrap();
    w.set("x.scores", vec![0.5f32, -1.0]).unwrap();
    w.set("x.flag", true).unwrap();
    let f32s: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
    w.add_tensor("a.weight", owned(QuantFormat::F32, &[3, 4], f32s))
        .unwrap();
    w.add_tensor("q.weight", owned(QuantFormat::Q4_0, &[2, 32], vec![7; 36]))
        .unwrap();
    w.add_tensor("h.weight", owned(QuantFormat::F16, &[5], vec![1; 10]))
        .unwrap();
    w.to_bytes().unwrap()
}
