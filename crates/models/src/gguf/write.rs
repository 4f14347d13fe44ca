//! A small GGUF v3 writer: metadata and tensors with correct alignment, written
//! atomically (temp file in the same directory, fsync, rename, fsync the directory).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use marlin_core::QTensor;

use super::limits::{DEFAULT_ALIGNMENT, MAGIC, MAX_ALIGNMENT, MAX_DIMS, MAX_NAME_LEN};
use super::metadata::Metadata;
use super::types::GgmlType;
use super::value::{MetaArray, MetaValue};
use crate::{Error, Result};

/// Collects metadata and tensors, then writes a GGUF v3 file.
#[derive(Debug, Default)]
pub struct GgufWriter {
    metadata: Metadata,
    tensors: Vec<(String, QTensor)>,
    names: HashSet<String>,
}

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Gguf(msg.into()))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_array(out: &mut Vec<u8>, a: &MetaArray) {
    out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! nums {
        ($v:expr) => {
            $v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()))
        };
    }
    match a {
        MetaArray::U8(v) => out.extend_from_slice(v),
        MetaArray::I8(v) => nums!(v),
        MetaArray::U16(v) => nums!(v),
        MetaArray::I16(v) => nums!(v),
        MetaArray::U32(v) => nums!(v),
        MetaArray::I32(v) => nums!(v),
        MetaArray::F32(v) => nums!(v),
        MetaArray::Bool(v) => v.iter().for_each(|&b| out.push(u8::from(b))),
        MetaArray::String(v) => v.iter().for_each(|s| put_str(out, s)),
        MetaArray::U64(v) => nums!(v),
        MetaArray::I64(v) => nums!(v),
        MetaArray::F64(v) => nums!(v),
    }
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::Array(a) => put_array(out, a),
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

fn pad_len(pos: u64, align: u64) -> u64 {
    (align - pos % align) % align
}

impl GgufWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a metadata entry (keys must be non-empty and unique).
    pub fn set(&mut self, key: &str, value: impl Into<MetaValue>) -> Result<&mut Self> {
        self.metadata.insert(key.to_owned(), value.into())?;
        Ok(self)
    }

    /// Add a tensor; its `QTensor` shape (outermost first) is written reversed as ggml dims.
    pub fn add_tensor(&mut self, name: &str, tensor: QTensor) -> Result<&mut Self> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return err(format!(
                "tensor name `{name}` must be 1..={MAX_NAME_LEN} bytes without control characters"
            ));
        }
        let n = tensor.shape.len();
        if n == 0 || n > MAX_DIMS as usize || tensor.shape.contains(&0) {
            return err(format!(
                "tensor `{name}`: shape {:?} must have 1..={MAX_DIMS} non-zero dims",
                tensor.shape
            ));
        }
        if !self.names.insert(name.to_owned()) {
            return err(format!("duplicate tensor name `{name}`"));
        }
        self.tensors.push((name.to_owned(), tensor));
        Ok(self)
    }

    fn alignment(&self) -> Result<u64> {
        match self.metadata.get("general.alignment") {
            None => Ok(DEFAULT_ALIGNMENT),
            Some(MetaValue::U32(a)) if a.is_power_of_two() && u64::from(*a) <= MAX_ALIGNMENT => {
                Ok(u64::from(*a))
            }
            Some(v) => err(format!(
                "general.alignment must be a u32 power of two ≤ {MAX_ALIGNMENT}, got {}",
                v.abbreviated()
            )),
        }
    }

    /// Write the whole file to `w`; returns the number of bytes written.
    pub fn write_to(&self, w: &mut impl Write) -> Result<u64> {
        let align = self.alignment()?;
        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in self.metadata.entries() {
            put_str(&mut head, k);
            put_value(&mut head, v);
        }
        let mut offset = 0u64;
        for (name, t) in &self.tensors {
            put_str(&mut head, name);
            head.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for &d in t.shape.iter().rev() {
                head.extend_from_slice(&(d as u64).to_le_bytes());
            }
            let ty = GgmlType::of_format(t.format).ok_or_else(|| {
                Error::Unsupported(format!("{name}: format {} has no GGUF type", t.format))
            })?;
            head.extend_from_slice(&ty.id.to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            let len = t.bytes().len() as u64;
            offset += len + pad_len(len, align);
        }
        let zeros = vec![0u8; align as usize];
        let mut pos = head.len() as u64;
        let head_pad = if self.tensors.is_empty() {
            0
        } else {
            pad_len(pos, align)
        };
        head.extend_from_slice(&zeros[..head_pad as usize]);
        pos += head_pad;
        let io = |e| Error::Gguf(format!("write failed: {e}"));
        w.write_all(&head).map_err(io)?;
        for (_, t) in &self.tensors {
            let bytes = t.bytes();
            let pad = pad_len(bytes.len() as u64, align);
            w.write_all(bytes).map_err(io)?;
            w.write_all(&zeros[..pad as usize]).map_err(io)?;
            pos += bytes.len() as u64 + pad;
        }
        Ok(pos)
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Write atomically to `path`: a reader never sees a partial file at that name.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        super::atomic::write_atomic(path, |f| self.write_to(f).map(|_| ()))
    }
}
