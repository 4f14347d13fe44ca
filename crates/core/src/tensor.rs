//! `QTensor`: a tensor of any [`QuantFormat`], backed by a memory map or owned bytes.

use std::ops::Range;
use std::sync::Arc;

use crate::{formats, Error, QuantFormat, Result};

/// Where a tensor's packed bytes live.
#[derive(Clone)]
pub enum TensorData {
    /// A window into a memory-mapped file (weights are mapped, never copied, on load).
    Mapped {
        map: Arc<memmap2::Mmap>,
        range: Range<usize>,
    },
    /// Bytes owned by the tensor (converted or synthetic weights).
    Owned(Arc<Vec<u8>>),
}

impl TensorData {
    /// The packed bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            // The range was checked against the map when the tensor was built.
            TensorData::Mapped { map, range } => &map[range.clone()],
            TensorData::Owned(v) => v,
        }
    }
}

impl std::fmt::Debug for TensorData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TensorData::Mapped { range, .. } => write!(f, "Mapped({range:?})"),
            TensorData::Owned(v) => write!(f, "Owned({} bytes)", v.len()),
        }
    }
}

/// A tensor in some format. `shape` is row-major, outermost first: the last dimension is
/// contiguous and is the one quant blocks run along (GGUF `ne` reversed). A linear weight
/// is `[out_features, in_features]`.
#[derive(Clone, Debug)]
pub struct QTensor {
    pub format: QuantFormat,
    pub shape: Vec<usize>,
    data: TensorData,
    /// Block-Hadamard size the weight was rotated with along its last dimension (0 = none).
    hadamard: usize,
}

impl QTensor {
    /// Build a tensor, checking that `data` holds exactly the bytes `shape` needs.
    pub fn new(format: QuantFormat, shape: Vec<usize>, data: TensorData) -> Result<Self> {
        let need = Self::nbytes_for(format, &shape)?;
        if let TensorData::Mapped { map, range } = &data {
            if range.end > map.len() || range.start > range.end {
                return Err(Error::Shape(format!(
                    "range {range:?} outside a map of {} bytes",
                    map.len()
                )));
            }
        }
        let have = data.bytes().len();
        if have != need {
            return Err(Error::Shape(format!(
                "{format} tensor {shape:?} needs {need} bytes, got {have}"
            )));
        }
        Ok(Self {
            format,
            shape,
            data,
            hadamard: 0,
        })
    }

    /// Mark the tensor as stored rotated: `W' = W·H` with block-Hadamard blocks of `block`
    /// along the last dimension; a matmul must rotate its input the same way
    /// ([`crate::hadamard::rotate`]). `0` clears the mark.
    pub fn with_hadamard(mut self, block: usize) -> Result<Self> {
        if block != 0
            && (!crate::hadamard::valid_block(block) || !self.cols().is_multiple_of(block))
        {
            return Err(Error::Shape(format!(
                "hadamard block {block} does not tile rows of {}",
                self.cols()
            )));
        }
        self.hadamard = block;
        Ok(self)
    }

    /// The block-Hadamard size the weight is stored rotated with (0 = not rotated).
    pub fn hadamard(&self) -> usize {
        self.hadamard
    }

    /// An owned f32 tensor.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<Self> {
        let bytes: Vec<u8> = bytemuck::cast_slice(values).to_vec();
        Self::new(QuantFormat::F32, shape, TensorData::Owned(Arc::new(bytes)))
    }

    /// Bytes a tensor of this format and shape occupies.
    pub fn nbytes_for(format: QuantFormat, shape: &[usize]) -> Result<usize> {
        if let QuantFormat::Trellis(t) = format {
            return formats::trellis::nbytes(t, shape);
        }
        let (&last, outer) = shape
            .split_last()
            .ok_or_else(|| Error::Shape("tensor with no dimensions".into()))?;
        let row = format.row_bytes(last)?;
        outer.iter().try_fold(row, |acc, &d| {
            acc.checked_mul(d)
                .ok_or_else(|| Error::Overflow(format!("{shape:?}")))
        })
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }

    /// The backing storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Length of the contiguous (last) dimension.
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// Product of all but the last dimension.
    pub fn rows(&self) -> usize {
        self.numel() / self.cols().max(1)
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.bytes().len() / self.rows().max(1)
    }

    /// The packed bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.bytes()[r * rb..(r + 1) * rb]
    }

    /// Dequantize row `r` into `out` (length `cols`). Trellis tensors refuse (no row access).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        if self.format.is_trellis() {
            return Err(Error::Unsupported(self.format.name(), "dequantize_row"));
        }
        if r >= self.rows() {
            return Err(Error::Shape(format!("row {r} of {}", self.rows())));
        }
        formats::dequantize(self.format, self.row(r), out)
    }

    /// Dequantize the whole tensor to f32 (reference path; allocates).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        if let QuantFormat::Trellis(t) = self.format {
            return formats::trellis::dequantize_stacked(t, self.bytes(), &self.shape);
        }
        let mut out = vec![0f32; self.numel()];
        if self.format.is_marlin() {
            // Rows may end in tail blocks: decode row by row.
            let cols = self.cols().max(1);
            for (r, y) in out.chunks_exact_mut(cols).enumerate() {
                formats::dequantize(self.format, self.row(r), y)?;
            }
        } else {
            formats::dequantize(self.format, self.bytes(), &mut out)?;
        }
        Ok(out)
    }
}
