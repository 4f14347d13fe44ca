//! Tensor info records: parsing one record and checking every record's data range.

use marlin_core::QuantFormat;

use super::limits::{MAX_DIMS, MAX_NAME_LEN};
use super::reader::Reader;
use super::types::{GgmlType, TypeIdError};
use crate::{Error, Result};

/// One tensor as described by the file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name (≤ 63 bytes, no control characters).
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` = ne0, the contiguous one.
    pub dims: Vec<u64>,
    /// The ggml type.
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub nbytes: u64,
}

impl TensorInfo {
    /// Row-major shape, outermost first (ggml dims reversed), as `QTensor` uses.
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }

    /// The engine format, or `None` for a ggml type the engine cannot execute.
    pub fn format(&self) -> Option<QuantFormat> {
        self.ggml_type.format()
    }

    /// Number of elements (the product was checked when parsing).
    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }
}

fn bad(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::Gguf(format!("tensor `{name}`: {msg}"))
}

/// Read tensor info number `i`, checking name, dims, type and size (not the offset).
pub(crate) fn read_tensor_info(r: &mut Reader<'_>, i: usize) -> Result<TensorInfo> {
    let what = format!("tensor info {i} name");
    let len = r.u64(&what)?;
    if len > MAX_NAME_LEN as u64 {
        return Err(Error::Gguf(format!(
            "tensor info {i}: name length {len} is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    let name = std::str::from_utf8(r.take(len as usize, &what)?)
        .map_err(|e| Error::Gguf(format!("{what}: not valid UTF-8 ({e})")))?
        .to_owned();
    if name.is_empty() {
        return Err(Error::Gguf(format!("tensor info {i}: empty tensor name")));
    }
    if name.chars().any(char::is_control) {
        return Err(bad(&name, "name contains control characters"));
    }
    let n_dims = r.u32(&format_args!("tensor `{name}` n_dims"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(bad(
            &name,
            format!("n_dims {n_dims} is not in 1..={MAX_DIMS}"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        let ne = r.u64(&format_args!("tensor `{name}` dim {d}"))?;
        if ne == 0 || ne > i64::MAX as u64 {
            return Err(bad(&name, format!("dim {d} = {ne} is not in 1..=2^63-1")));
        }
        dims.push(ne);
    }
    dims.iter()
        .try_fold(1u64, |acc, &d| {
            acc.checked_mul(d).filter(|&p| p <= i64::MAX as u64)
        })
        .ok_or_else(|| bad(&name, format!("element count of dims {dims:?} overflows")))?;
    let type_id = r.u32(&format_args!("tensor `{name}` type"))?;
    let ggml_type = GgmlType::from_id(type_id).map_err(|e| match e {
        TypeIdError::Removed(old) => bad(
            &name,
            format!("ggml type id {type_id} ({old}) was removed from GGUF and is not supported"),
        ),
        TypeIdError::Unknown => bad(&name, format!("unknown ggml type id {type_id}")),
    })?;
    if dims[0] % ggml_type.block_elems != 0 {
        return Err(bad(
            &name,
            format!(
                "row length ne0 = {} is not a multiple of the {} block size {}",
                dims[0], ggml_type, ggml_type.block_elems
            ),
        ));
    }
    let nbytes = ggml_type
        .nbytes(&dims)
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(|| {
            bad(
                &name,
                format!("byte size of {ggml_type} {dims:?} overflows"),
            )
        })?;
    let offset = r.u64(&format_args!("tensor `{name}` offset"))?;
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        nbytes,
    })
}

/// Check that every tensor is aligned, inside the file, and disjoint from the others.
pub(crate) fn check_ranges(
    tensors: &[TensorInfo],
    data_start: u64,
    alignment: u64,
    file_len: u64,
) -> Result<()> {
    let mut spans = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.offset % alignment != 0 {
            return Err(bad(
                &t.name,
                format!(
                    "offset {} is not a multiple of the alignment {alignment}",
                    t.offset
                ),
            ));
        }
        let start = data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.nbytes));
        match (start, end) {
            (Some(s), Some(e)) if e <= file_len => spans.push((s, e, t.name.as_str())),
            (Some(s), Some(e)) => {
                return Err(bad(
                    &t.name,
                    format!("data [{s}, {e}) extends past end of file (size {file_len})"),
                ))
            }
            _ => {
                return Err(bad(
                    &t.name,
                    format!("data offset {} + {} bytes overflows", t.offset, t.nbytes),
                ))
            }
        }
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        let ((s0, e0, a), (s1, e1, b)) = (w[0], w[1]);
        if s1 < e0 {
            return Err(Error::Gguf(format!(
                "tensors `{a}` [{s0}, {e0}) and `{b}` [{s1}, {e1}) overlap"
            )));
        }
    }
    Ok(())
}
