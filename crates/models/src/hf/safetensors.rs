//! One `.safetensors` file, memory-mapped and validated by the `safetensors` crate
//! (header ≤ 100 MB, contiguous non-overlapping ranges that cover the data exactly),
//! plus a duplicate-key check and error messages that name the offending tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marlin_core::{QTensor, QuantFormat, TensorData};
use memmap2::{Mmap, MmapMut};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::json::check_no_duplicate_keys;
use crate::{Error, Result};

/// A tensor as stored: dtype, shape and its bytes in the map (zero-copy).
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub dtype: Dtype,
    /// Row-major shape as written in the header.
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// A validated, memory-mapped safetensors file.
#[derive(Debug)]
pub struct SafetensorsFile {
    label: String,
    map: Arc<Mmap>,
    /// (name, dtype, shape, absolute byte range), in data order.
    tensors: Vec<(String, Dtype, Vec<usize>, std::ops::Range<usize>)>,
    index: HashMap<String, usize>,
    metadata: HashMap<String, String>,
}

fn bad(label: &str, msg: impl std::fmt::Display) -> Error {
    Error::Safetensors(format!("{label}: {msg}"))
}

/// The engine format of a float dtype.
pub fn format_of(dtype: Dtype) -> Option<QuantFormat> {
    match dtype {
        Dtype::F32 => Some(QuantFormat::F32),
        Dtype::F16 => Some(QuantFormat::F16),
        Dtype::BF16 => Some(QuantFormat::BF16),
        _ => None,
    }
}

impl SafetensorsFile {
    /// Map and validate the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: read-only map; modifying the file while it is open is unsupported.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_map(Arc::new(map), path.display().to_string())
    }

    /// Validate bytes held in memory (copied into an anonymous map); for tests and fuzzing.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let anon = |source| Error::Io {
            path: PathBuf::from("<anonymous map>"),
            source,
        };
        let mut m = MmapMut::map_anon(bytes.len().max(1)).map_err(anon)?;
        m[..bytes.len()].copy_from_slice(bytes);
        let map = m.make_read_only().map_err(anon)?;
        let map = Arc::new(map);
        // The anonymous map is at least one byte; validate only the real length.
        Self::from_map_len(map, bytes.len(), "<bytes>".into())
    }

    /// Validate an existing map of the whole file; `label` prefixes error messages.
    pub fn from_map(map: Arc<Mmap>, label: String) -> Result<Self> {
        let len = map.len();
        Self::from_map_len(map, len, label)
    }

    fn from_map_len(map: Arc<Mmap>, len: usize, label: String) -> Result<Self> {
        let buf = &map[..len];
        let (n, meta) = SafeTensors::read_metadata(buf).map_err(|e| explain(buf, &label, e))?;
        // read_metadata proved 8 + n ≤ len and that the header is UTF-8.
        let header = std::str::from_utf8(&buf[8..8 + n]).map_err(|e| bad(&label, e))?;
        check_no_duplicate_keys(header).map_err(|e| bad(&label, format!("header: {e}")))?;
        let base = 8 + n;
        let mut tensors = Vec::new();
        for name in meta.offset_keys() {
            let info = meta
                .info(&name)
                .ok_or_else(|| bad(&label, format!("tensor `{name}` vanished")))?;
            let (s, e) = info.data_offsets;
            tensors.push((name, info.dtype, info.shape.clone(), base + s..base + e));
        }
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.0.clone(), i))
            .collect();
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(Self {
            label,
            map,
            tensors,
            index,
            metadata,
        })
    }

    /// Tensor names in data order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.0.as_str())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Whether tensor `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The free-form `__metadata__` strings.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Tensor `name` as stored (any dtype), zero-copy.
    pub fn raw(&self, name: &str) -> Result<RawTensor> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        let (_, dtype, shape, range) = &self.tensors[i];
        Ok(RawTensor {
            dtype: *dtype,
            shape: shape.clone(),
            data: TensorData::Mapped {
                map: Arc::clone(&self.map),
                range: range.clone(),
            },
        })
    }

    /// Tensor `name` as a zero-copy [`QTensor`]: F32, F16 and BF16 only. A scalar
    /// (shape `[]`) becomes shape `[1]`.
    pub fn tensor(&self, name: &str) -> Result<QTensor> {
        let raw = self.raw(name)?;
        let format = format_of(raw.dtype).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: tensor `{name}` has dtype {:?}; only F32, F16 and BF16 load as weights",
                self.label, raw.dtype
            ))
        })?;
        let shape = if raw.shape.is_empty() {
            vec![1]
        } else {
            raw.shape
        };
        Ok(QTensor::new(format, shape, raw.data)?)
    }
}

/// Turn the crate's error into a message that names the problem (and the tensor).
fn explain(buf: &[u8], label: &str, e: SafeTensorError) -> Error {
    let len = buf.len();
    let head = buf.get(..8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    });
    let msg = match e {
        SafeTensorError::HeaderTooSmall => {
            format!("file too small ({len} bytes) for the header length")
        }
        SafeTensorError::HeaderTooLarge => {
            format!(
                "header length {} exceeds the 100 MB limit",
                head.unwrap_or(0)
            )
        }
        SafeTensorError::InvalidHeaderLength => format!(
            "header length {} extends past end of file (size {len})",
            head.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeader(e) => format!("header is not UTF-8 ({e})"),
        SafeTensorError::InvalidHeaderDeserialization(e) => format!("header JSON: {e}"),
        SafeTensorError::MetadataIncompleteBuffer => {
            format!(
                "tensor data does not cover the file exactly (size {len}: holes or trailing bytes)"
            )
        }
        e @ (SafeTensorError::InvalidOffset(_)
        | SafeTensorError::TensorInvalidInfo
        | SafeTensorError::ValidationOverflow
        | SafeTensorError::MisalignedSlice) => diagnose(buf).unwrap_or_else(|| e.to_string()),
        e => e.to_string(),
    };
    bad(label, msg)
}

/// Find the first tensor whose size or offsets are wrong, for a message that names it.
fn diagnose(buf: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(buf.get(..8)?.try_into().ok()?)).ok()?;
    let header = std::str::from_utf8(buf.get(8..8usize.checked_add(n)?)?).ok()?;
    let entries: HashMap<String, serde_json::Value> = serde_json::from_str(header).ok()?;
    let mut tensors: Vec<(String, TensorInfo)> = entries
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| Some((k, serde_json::from_value::<TensorInfo>(v).ok()?)))
        .collect::<Option<_>>()?;
    tensors.sort_by(|a, b| (a.1.data_offsets, &a.0).cmp(&(b.1.data_offsets, &b.0)));
    let mut expect = 0usize;
    for (name, info) in tensors {
        let (s, e) = info.data_offsets;
        let size = info
            .shape
            .iter()
            .try_fold(info.dtype.bitsize(), |a, &d| a.checked_mul(d));
        let Some(bits) = size else {
            return Some(format!(
                "tensor `{name}`: size of shape {:?} overflows",
                info.shape
            ));
        };
        if bits % 8 != 0 {
            return Some(format!(
                "tensor `{name}`: {bits} bits is not a whole number of bytes"
            ));
        }
        if e < s || e - s != bits / 8 {
            return Some(format!(
                "tensor `{name}`: data offsets [{s}, {e}) do not hold {:?} {:?} ({} bytes)",
                info.dtype,
                info.shape,
                bits / 8
            ));
        }
        if s != expect {
            return Some(format!(
                "tensor `{name}`: data starts at {s}, expected {expect} (overlap or hole)"
            ));
        }
        expect = e;
    }
    None
}
