//! Uploading a trellis weight (`QuantFormat::Trellis`): the 16×16 tiles of Q go to row
//! chunks of whole 16-row tile rows, exactly as stored (the kernels read the bitstream
//! words directly); `suh` and `svh` go to buffers of their own for the launcher's
//! `hadamard_scale` passes on both sides of the matmul.

use marlin_core::formats::trellis::{had_block, layout, TrellisLayout};
use marlin_core::QuantFormat;

use crate::layout::WeightLayout;
use crate::weight::{GpuWeight, WeightChunk};
use crate::{Error, GpuContext, Result};

/// The input and output sides of a trellis weight, `W = diag(svh) H_n Q H_k diag(suh)`.
#[derive(Debug)]
pub struct TrellisSides {
    /// `suh`, one f32 per input column.
    pub suh: wgpu::Buffer,
    /// `svh`, one f32 per output row.
    pub svh: wgpu::Buffer,
    /// Hadamard block along the inputs (`had_block(cols)`).
    pub had_k: usize,
    /// Hadamard block along the outputs (`had_block(rows)`).
    pub had_n: usize,
}

/// A storage buffer holding `bytes` (padded to whole 16-byte vec4s).
pub(crate) fn storage_with(
    ctx: &GpuContext,
    what: &'static str,
    bytes: &[u8],
) -> Result<wgpu::Buffer> {
    let size = (bytes.len() as u64).div_ceil(16).max(1) * 16;
    let buffer = ctx.scoped(what, || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("marlin-weight"),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        })
    })?;
    {
        let mut view = buffer
            .slice(..)
            .get_mapped_range_mut()
            .map_err(|e| Error::Poll(e.to_string()))?;
        view.slice(..bytes.len()).copy_from_slice(bytes);
    }
    buffer.unmap();
    Ok(buffer)
}

/// The layout of an `[n, k]` weight in trellis `format`, checking that the part of it that
/// `want` measures (`what`) holds `got` bytes.
fn checked_layout(
    format: QuantFormat,
    n: usize,
    k: usize,
    what: &str,
    want: impl Fn(&TrellisLayout) -> usize,
    got: usize,
) -> Result<TrellisLayout> {
    const OP: &str = "weight upload";
    let QuantFormat::Trellis(f) = format else {
        return Err(Error::shape(
            OP,
            format!("{format} is not a trellis format"),
        ));
    };
    let lay = layout(f, n, k)?;
    if want(&lay) != got {
        return Err(Error::shape(
            OP,
            format!("{format} [{n}, {k}] needs {} {what}, got {got}", want(&lay)),
        ));
    }
    Ok(lay)
}

/// Upload the bytes of an `[n, k]` trellis weight in `format` with chunks of at most
/// `limit` bytes.
pub(crate) fn upload_trellis(
    ctx: &GpuContext,
    format: QuantFormat,
    n: usize,
    k: usize,
    bytes: &[u8],
    limit: u64,
) -> Result<GpuWeight> {
    const OP: &str = "weight upload";
    let lay = checked_layout(format, n, k, "bytes", |l| l.bytes, bytes.len())?;
    let mut w = upload_tiles(ctx, format, n, k, &bytes[..lay.suh_at], limit)?;
    w.trellis = Some(Box::new(TrellisSides {
        suh: storage_with(ctx, OP, &bytes[lay.suh_at..lay.svh_at])?,
        svh: storage_with(ctx, OP, &bytes[lay.svh_at..lay.bytes])?,
        had_k: had_block(k),
        had_n: had_block(n),
    }));
    Ok(w)
}

/// Upload only the tiles of Q of an `[n, k]` trellis weight (`tiles`: the bytes before
/// `suh`) in chunks of whole tile rows of at most `limit` bytes; no sides (`trellis: None`):
/// stacked experts keep theirs per matrix.
pub(crate) fn upload_tiles(
    ctx: &GpuContext,
    format: QuantFormat,
    n: usize,
    k: usize,
    tiles: &[u8],
    limit: u64,
) -> Result<GpuWeight> {
    const OP: &str = "weight upload";
    let lay = checked_layout(format, n, k, "bytes of tiles", |l| l.suh_at, tiles.len())?;
    if u32::try_from(lay.suh_at / 4).is_err() {
        return Err(Error::shape(OP, format!("[{n}, {k}] exceeds u32 words")));
    }
    // One tile row (16 output rows) is the unit of chunking.
    let tile_row = (lay.tiles_k * lay.tile_bytes) as u64;
    let limit = limit.min(ctx.max_binding()).min(u64::from(u32::MAX) & !15);
    if tile_row > limit {
        return Err(Error::TooLarge {
            what: format!("one {format} tile row of [16, {k}]"),
            bytes: tile_row,
            limit,
        });
    }
    let per_chunk = usize::try_from(limit / tile_row)
        .unwrap_or(n / 16)
        .min(n / 16);
    let mut chunks = Vec::new();
    let mut tr = 0;
    while tr < n / 16 {
        let end = (tr + per_chunk).min(n / 16);
        let piece = &tiles[tr * tile_row as usize..end * tile_row as usize];
        chunks.push(WeightChunk {
            buffer: storage_with(ctx, OP, piece)?,
            rows: 16 * tr..16 * end,
            meta_offset_words: 0,
        });
        tr = end;
    }
    Ok(GpuWeight {
        format,
        rows: n,
        cols: k,
        layout: WeightLayout::Tiles,
        chunks,
        hadamard: 0,
        trellis: None,
    })
}
