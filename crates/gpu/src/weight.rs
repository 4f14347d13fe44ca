//! `GpuWeight`: a 2-D weight uploaded once, in its GPU layout, split into row chunks that
//! each fit one storage binding (lavapipe allows 128 MiB; a large vocabulary table does not).

use std::ops::Range;

use marlin_core::{QTensor, QuantFormat};

use crate::layout::{chunk_bytes, write_chunk, WeightLayout};
use crate::weight_trellis::{upload_trellis, TrellisSides};
use crate::{Error, GpuContext, Result};

/// One buffer holding rows `rows` of the weight.
#[derive(Debug)]
pub struct WeightChunk {
    pub buffer: wgpu::Buffer,
    pub rows: Range<usize>,
    /// Word index of the scale region (split layouts).
    pub meta_offset_words: u32,
}

/// A weight matrix `[rows = out_features, cols = in_features]` on the GPU.
#[derive(Debug)]
pub struct GpuWeight {
    pub format: QuantFormat,
    pub rows: usize,
    pub cols: usize,
    pub layout: WeightLayout,
    pub chunks: Vec<WeightChunk>,
    /// Block-Hadamard size the weight is stored rotated with (0 = none): matmuls rotate
    /// their input first.
    pub hadamard: usize,
    /// A trellis weight's scaled rotations around its tiles (`None` for other formats).
    pub trellis: Option<Box<TrellisSides>>,
}

impl GpuWeight {
    /// Upload `t` (rows = product of all but the last dimension).
    pub fn upload(ctx: &GpuContext, t: &QTensor) -> Result<GpuWeight> {
        Self::upload_chunked(ctx, t, ctx.max_binding())
    }

    /// Upload `t` with chunks of at most `max_chunk_bytes` (tests use small values to
    /// exercise chunking; the device limit still applies).
    pub fn upload_chunked(
        ctx: &GpuContext,
        t: &QTensor,
        max_chunk_bytes: u64,
    ) -> Result<GpuWeight> {
        let limit = max_chunk_bytes.min(ctx.max_binding());
        if t.format.is_trellis() && t.shape.len() != 2 {
            return Err(Error::Unsupported {
                op: "gemv/gemm (stacked trellis experts)",
                format: t.format.name(),
            });
        }
        let mut w = Self::from_bytes(ctx, t.format, t.rows(), t.cols(), t.bytes(), limit)?;
        w.hadamard = t.hadamard();
        Ok(w)
    }

    /// Upload packed GGUF bytes of a `[rows, cols]` weight in `format`.
    pub fn from_bytes(
        ctx: &GpuContext,
        format: QuantFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
        max_chunk_bytes: u64,
    ) -> Result<GpuWeight> {
        const OP: &str = "weight upload";
        if format.is_trellis() {
            return upload_trellis(ctx, format, rows, cols, bytes, max_chunk_bytes);
        }
        let layout = WeightLayout::for_format(format).ok_or(Error::Unsupported {
            op: "gemv/gemm",
            format: format.name(),
        })?;
        let row_bytes = format.row_bytes(cols)?;
        if rows == 0 || cols == 0 || !cols.is_multiple_of(4) {
            return Err(Error::shape(
                OP,
                format!("[{rows}, {cols}]: need rows, cols > 0 and cols % 4 == 0"),
            ));
        }
        if u32::try_from(rows).is_err() || u32::try_from(cols).is_err() {
            return Err(Error::shape(OP, format!("[{rows}, {cols}] exceeds u32")));
        }
        if bytes.len() != rows * row_bytes {
            return Err(Error::shape(
                OP,
                format!(
                    "{format} [{rows}, {cols}] needs {} bytes, got {}",
                    rows * row_bytes,
                    bytes.len()
                ),
            ));
        }
        let block_bytes = format.block_bytes();
        let blocks = (cols / format.block_elems()) as u64;
        let units = crate::layout_marlin::unit_geom(format);
        let sizes = |rows: usize| match units {
            Some(u) => u.chunk_bytes(rows, cols),
            None => chunk_bytes(&layout, rows as u64, blocks, block_bytes as u64),
        };
        let one_row = sizes(1).total;
        // Kernels index words with u32 and chunks must fit one binding.
        let limit = max_chunk_bytes.min(u64::from(u32::MAX) & !3);
        if one_row > limit {
            return Err(Error::TooLarge {
                what: format!("one {format} row of {cols}"),
                bytes: one_row,
                limit,
            });
        }
        // Padding to whole vec4s adds at most 30 bytes, hence the 32 bytes of slack.
        let per_row = if units.is_some() {
            one_row
        } else {
            row_bytes as u64
        };
        let fit = (limit.saturating_sub(32) / per_row).max(1);
        let rows_per_chunk = usize::try_from(fit).unwrap_or(rows).min(rows);
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < rows {
            let end = (start + rows_per_chunk).min(rows);
            let cb = sizes(end - start);
            let buffer = ctx.scoped(OP, || {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("marlin-weight"),
                    size: cb.total,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: true,
                })
            })?;
            {
                let mut view = buffer
                    .slice(..)
                    .get_mapped_range_mut()
                    .map_err(|e| Error::Poll(e.to_string()))?;
                let src = &bytes[start * row_bytes..end * row_bytes];
                let put = |off: usize, piece: &[u8]| {
                    view.slice(off..off + piece.len()).copy_from_slice(piece);
                };
                match units {
                    Some(u) => u.write_chunk(format, src, end - start, cols, put),
                    None => write_chunk(&layout, src, block_bytes, put),
                }
            }
            buffer.unmap();
            chunks.push(WeightChunk {
                buffer,
                rows: start..end,
                meta_offset_words: cb.meta_offset_words as u32,
            });
            start = end;
        }
        Ok(GpuWeight {
            format,
            rows,
            cols,
            layout,
            chunks,
            hadamard: 0,
            trellis: None,
        })
    }

    /// Bytes a `[rows, cols]` matrix of a plain float `format` (f32, f16, bf16) takes in
    /// the layout [`GpuWeight::raw_view`] reads.
    pub fn raw_bytes(format: QuantFormat, rows: usize, cols: usize) -> Result<u64> {
        let row = format.row_bytes(cols)? as u64;
        Ok((rows as u64 * row).div_ceil(16) * 16)
    }

    /// A `[rows, cols]` matrix a step built in `buffer` (row-major, f32/f16/bf16 values from
    /// byte 0; e.g. a sequence's dense MLA keys), viewed as a weight so the matmul kernels
    /// can multiply by it.
    pub fn raw_view(
        format: QuantFormat,
        rows: usize,
        cols: usize,
        buffer: &wgpu::Buffer,
    ) -> Result<GpuWeight> {
        const OP: &str = "weight view";
        let layout = WeightLayout::for_format(format)
            .filter(|l| *l == WeightLayout::Raw && !format.is_trellis())
            .ok_or(Error::Unsupported {
                op: OP,
                format: format.name(),
            })?;
        let need = Self::raw_bytes(format, rows, cols)?;
        if rows == 0 || !cols.is_multiple_of(4) || buffer.size() < need {
            return Err(Error::shape(
                OP,
                format!(
                    "{format} [{rows}, {cols}] (cols % 4 == 0) needs {need} bytes, the buffer holds {}",
                    buffer.size()
                ),
            ));
        }
        Ok(GpuWeight {
            format,
            rows,
            cols,
            layout,
            chunks: vec![WeightChunk {
                buffer: buffer.clone(),
                rows: 0..rows,
                meta_offset_words: 0,
            }],
            hadamard: 0,
            trellis: None,
        })
    }

    /// Bytes the weight occupies on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buffer.size()).sum()
    }
}
