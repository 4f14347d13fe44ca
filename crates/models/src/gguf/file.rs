//! `GgufFile`: a memory-mapped, validated GGUF file handing out zero-copy tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marlin_core::{QTensor, TensorData};
use memmap2::{Mmap, MmapMut};

use super::metadata::Metadata;
use super::parse::{parse_header, Header};
use super::tensor_info::TensorInfo;
use crate::{Error, Result};

/// An open GGUF file (v2 or v3). Every size and range in it was checked at open time.
#[derive(Debug)]
pub struct GgufFile {
    path: Option<PathBuf>,
    map: Arc<Mmap>,
    header: Header,
    index: HashMap<String, usize>,
}

impl GgufFile {
    /// Map and validate the file at `path`. The file must not be modified while open
    /// (a truncation under a live map is out of scope, as for safetensors).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; we never hand out a mutable view. Concurrent
        // modification of the file by another process is documented as unsupported.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let mut f = Self::from_map(Arc::new(map))
            .map_err(|e| Error::Gguf(format!("{}: {}", path.display(), strip(e))))?;
        f.path = Some(path.to_path_buf());
        Ok(f)
    }

    /// Validate an existing map (the whole file).
    pub fn from_map(map: Arc<Mmap>) -> Result<Self> {
        let header = parse_header(&map)?;
        let index = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Self {
            path: None,
            map,
            header,
            index,
        })
    }

    /// Parse bytes held in memory (copied into an anonymous map); for tests and fuzzing.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 4 {
            return Err(Error::Gguf(format!(
                "file too small ({} bytes) to hold the magic",
                bytes.len()
            )));
        }
        let mut m = MmapMut::map_anon(bytes.len()).map_err(|source| Error::Io {
            path: PathBuf::from("<anonymous map>"),
            source,
        })?;
        m.copy_from_slice(bytes);
        let map = m.make_read_only().map_err(|source| Error::Io {
            path: PathBuf::from("<anonymous map>"),
            source,
        })?;
        Self::from_map(Arc::new(map))
    }

    /// The path this file was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// File format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// Absolute offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.header.data_start
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str> {
        self.header.metadata.get_str("general.architecture")
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The info of tensor `name`, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.header.tensors[i])
    }

    /// The raw bytes of tensor `name` (zero-copy).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.info(name)?;
        Ok(&self.map[self.range(info)?])
    }

    /// Tensor `name` as a zero-copy mapped [`QTensor`]; fails for types the engine lacks.
    pub fn tensor(&self, name: &str) -> Result<QTensor> {
        let info = self.info(name)?;
        let format = info.ggml_type.format().ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor `{name}` has ggml type {} ({}), which the engine cannot execute",
                info.ggml_type, info.ggml_type.id
            ))
        })?;
        let shape = info
            .shape()
            .into_iter()
            .map(usize::try_from)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::Gguf(format!("tensor `{name}`: shape does not fit in memory")))?;
        let data = TensorData::Mapped {
            map: Arc::clone(&self.map),
            range: self.range(info)?,
        };
        Ok(QTensor::new(format, shape, data)?)
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_info(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))
    }

    /// Byte range of a tensor (`check_ranges` proved it lies inside the map).
    fn range(&self, t: &TensorInfo) -> Result<std::ops::Range<usize>> {
        let start = self.header.data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.nbytes));
        match (start.map(usize::try_from), end.map(usize::try_from)) {
            (Some(Ok(s)), Some(Ok(e))) if e <= self.map.len() => Ok(s..e),
            _ => Err(Error::Gguf(format!(
                "tensor `{}`: data range is outside the file",
                t.name
            ))),
        }
    }
}

/// The message of a GGUF error without its "invalid GGUF file: " prefix.
fn strip(e: Error) -> String {
    match e {
        Error::Gguf(m) => m,
        e => e.to_string(),
    }
}
