//! Parsing and validating a whole GGUF header (digest §1.2): magic, version, counts,
//! metadata, alignment, tensor infos and data ranges.

use std::collections::HashSet;

use super::limits::*;
use super::metadata::Metadata;
use super::reader::Reader;
use super::tensor_info::{check_ranges, read_tensor_info, TensorInfo};
use super::value::{read_type, read_value, MetaValue};
use crate::{Error, Result};

/// Everything the header says, validated against the file length.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_start: u64,
}

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Gguf(msg.into()))
}

fn check_version(v: u32) -> Result<()> {
    match v {
        2 | 3 => Ok(()),
        0 => err("version 0 is invalid"),
        1 => err("version 1 is not supported (only versions 2 and 3 are)"),
        v if v & 0xFFFF == 0 => err(format!(
            "version {v:#010x} looks byte-swapped: big-endian GGUF files are not supported"
        )),
        v => err(format!("version {v} is newer than the supported version 3")),
    }
}

/// The alignment named by `general.alignment`, or the default.
fn alignment(md: &Metadata) -> Result<u64> {
    let a = match md.get("general.alignment") {
        None => return Ok(DEFAULT_ALIGNMENT),
        Some(MetaValue::U32(a)) => u64::from(*a),
        Some(v) => {
            return err(format!(
                "general.alignment must be u32, found {}",
                v.type_name()
            ))
        }
    };
    if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
        return err(format!(
            "general.alignment {a} must be a power of two between 1 and {MAX_ALIGNMENT}"
        ));
    }
    Ok(a)
}

/// Parse and validate the header of a whole GGUF file held in `buf`.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Header> {
    if buf.len() < 4 {
        return err(format!(
            "file too small ({} bytes) to hold the magic",
            buf.len()
        ));
    }
    let mut r = Reader::new(buf);
    let magic = r.array::<4>(&"magic")?;
    if magic != MAGIC {
        return err(format!("bad magic {magic:02x?} (expected \"GGUF\")"));
    }
    let version = r.u32(&"version")?;
    check_version(version)?;
    let n_tensors = r.u64(&"tensor count")?;
    let n_kv = r.u64(&"metadata count")?;
    let left = r.remaining() as u64;
    if n_kv > left / MIN_KV_BYTES as u64 {
        return err(format!(
            "metadata count {n_kv} is impossible: only {left} bytes follow the header"
        ));
    }
    // Both counts are now small; keys and tensor infos share the bytes left.
    let kv_min = n_kv * MIN_KV_BYTES as u64;
    if n_tensors > (left - kv_min) / MIN_TENSOR_INFO_BYTES as u64 {
        return err(format!(
            "tensor count {n_tensors} is impossible: only {left} bytes follow the header"
        ));
    }
    let mut metadata = Metadata::default();
    for i in 0..n_kv {
        let key = r.string(MAX_KEY_LEN, &format_args!("metadata key {i}"))?;
        if key.is_empty() {
            return err(format!("metadata key {i} is empty"));
        }
        let what = format!("key `{key}`");
        let t = read_type(&mut r, &what)?;
        let value = read_value(&mut r, t, &what)?;
        metadata.insert(key, value)?;
        check_header_size(&r)?;
    }
    let alignment = alignment(&metadata)?;
    // Reserve only a little: records are ~3× larger in memory than their minimum size on disk,
    // so memory grows with what was actually parsed, not with the claimed count.
    let n_tensors =
        usize::try_from(n_tensors).map_err(|_| Error::Gguf("tensor count overflows".into()))?;
    let mut tensors = Vec::with_capacity(n_tensors.min(PREALLOC_MAX));
    let mut names = HashSet::with_capacity(n_tensors.min(PREALLOC_MAX));
    for i in 0..n_tensors {
        let t = read_tensor_info(&mut r, i)?;
        if !names.insert(t.name.clone()) {
            return err(format!("duplicate tensor name `{}`", t.name));
        }
        tensors.push(t);
        check_header_size(&r)?;
    }
    let end = r.pos() as u64;
    let data_start = end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| Error::Gguf("data section offset overflows".into()))?;
    check_ranges(&tensors, data_start, alignment, buf.len() as u64)?;
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_start,
    })
}

fn check_header_size(r: &Reader<'_>) -> Result<()> {
    if r.pos() > MAX_HEADER_BYTES {
        return err(format!(
            "metadata and tensor infos exceed {MAX_HEADER_BYTES} bytes"
        ));
    }
    Ok(())
}
