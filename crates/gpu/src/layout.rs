//! How each weight format is stored on the GPU: as packed (`Raw`), or split into a
//! word-aligned payload per block and a separate scale region (`Split`), so that kernels
//! read blocks with aligned u32 loads. The kernels' format files document the same layouts.

use std::ops::Range;

use marlin_core::QuantFormat;

/// Storage layout of a weight format in a GPU buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightLayout {
    /// The GGUF bytes as they are (blocks already 4-byte aligned, or plain floats).
    Raw,
    /// Each block's `payload` byte range goes to region 1 (blocks back to back, word
    /// aligned); its `meta` byte range (scales) to region 2, which starts at a word boundary.
    Split {
        payload: Range<usize>,
        meta: Range<usize>,
    },
    /// metal-marlin formats: codes per 32-element unit, then scales, then zero points
    /// (rearranged row by row; see `layout_marlin`).
    Units,
    /// Trellis formats: 16×16 tiles of bitstream words, whole tile rows per chunk, as
    /// stored (see `weight_trellis`).
    Tiles,
}

impl WeightLayout {
    /// Layout used for `format`, or `None` when the GPU has no kernel for it.
    pub fn for_format(format: QuantFormat) -> Option<WeightLayout> {
        use QuantFormat as F;
        let split =
            |payload: Range<usize>, meta: Range<usize>| Some(WeightLayout::Split { payload, meta });
        match format {
            F::F32 | F::F16 | F::BF16 | F::Q4_K | F::Q5_K => Some(WeightLayout::Raw),
            F::Q4_0 => split(2..18, 0..2),
            F::Q4_1 => split(4..20, 0..4),
            F::Q5_0 => split(2..22, 0..2),
            F::Q5_1 => split(4..24, 0..4),
            F::Q8_0 => split(2..34, 0..2),
            F::Q6_K => split(0..208, 208..210),
            F::MXFP4 => split(1..17, 0..1),
            F::Trellis(_) => Some(WeightLayout::Tiles),
            f => crate::layout_marlin::unit_geom(f).map(|_| WeightLayout::Units),
        }
    }

    /// Short name for logs and bench lines.
    pub fn name(&self) -> &'static str {
        match self {
            WeightLayout::Raw => "raw",
            WeightLayout::Split { .. } => "split",
            WeightLayout::Units => "units",
            WeightLayout::Tiles => "tiles",
        }
    }
}

/// Byte sizes of a chunk of `rows` rows of `row_bytes` packed bytes in `layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBytes {
    /// Total bytes to allocate (a multiple of 16).
    pub total: u64,
    /// Word index where the scale region starts (0 for `Raw`).
    pub meta_offset_words: u64,
}

/// Sizes for a chunk of `rows` rows, each `blocks` blocks of `block_bytes` bytes. Totals
/// are whole vec4s (16 bytes): kernels read weights as `array<vec4<u32>>`.
pub fn chunk_bytes(layout: &WeightLayout, rows: u64, blocks: u64, block_bytes: u64) -> ChunkBytes {
    let n = rows * blocks;
    match layout {
        // Whole rows (see `layout_marlin`); callers size Units chunks there.
        WeightLayout::Raw | WeightLayout::Units | WeightLayout::Tiles => ChunkBytes {
            total: (n * block_bytes).div_ceil(16) * 16,
            meta_offset_words: 0,
        },
        WeightLayout::Split { payload, meta } => {
            let pay = (n * payload.len() as u64).div_ceil(16) * 16;
            let met = n * meta.len() as u64;
            ChunkBytes {
                total: (pay + met).div_ceil(16) * 16,
                meta_offset_words: pay / 4,
            }
        }
    }
}

/// Blocks converted per batch when splitting (bounds the temporary memory).
const BATCH_BLOCKS: usize = 1 << 16;

/// Convert packed blocks `src` (whole blocks of `block_bytes`) to `layout`, handing out
/// `(byte offset, bytes)` pieces of the chunk to `put`. Padding is not written: buffers
/// start zeroed.
pub fn write_chunk(
    layout: &WeightLayout,
    src: &[u8],
    block_bytes: usize,
    mut put: impl FnMut(usize, &[u8]),
) {
    match layout {
        WeightLayout::Raw | WeightLayout::Units | WeightLayout::Tiles => put(0, src),
        WeightLayout::Split { payload, meta } => {
            let n = src.len() / block_bytes;
            let meta_start = (n * payload.len()).div_ceil(16) * 16;
            let mut pay = Vec::new();
            let mut met = Vec::new();
            for (b, batch) in src.chunks(BATCH_BLOCKS * block_bytes).enumerate() {
                pay.clear();
                met.clear();
                for blk in batch.chunks_exact(block_bytes) {
                    pay.extend_from_slice(&blk[payload.clone()]);
                    met.extend_from_slice(&blk[meta.clone()]);
                }
                let first = b * BATCH_BLOCKS;
                put(first * payload.len(), &pay);
                put(meta_start + first * meta.len(), &met);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_layout_separates_scales() {
        let l = WeightLayout::for_format(QuantFormat::Q4_0).unwrap();
        // Three Q4_0 blocks: d = [i, 0xA0+i], qs = 16 × i.
        let src: Vec<u8> = (0..3u8)
            .flat_map(|i| [i, 0xA0 + i].into_iter().chain(std::iter::repeat_n(i, 16)))
            .collect();
        let cb = chunk_bytes(&l, 1, 3, 18);
        assert_eq!(
            cb,
            ChunkBytes {
                total: 64,
                meta_offset_words: 12
            }
        );
        let mut dst = vec![0u8; cb.total as usize];
        write_chunk(&l, &src, 18, |off, bytes| {
            dst[off..off + bytes.len()].copy_from_slice(bytes)
        });
        assert_eq!(&dst[16..32], &[1u8; 16]);
        assert_eq!(&dst[48..54], &[0, 0xA0, 1, 0xA1, 2, 0xA2]);
        assert_eq!(&dst[54..56], &[0, 0]);
    }

    #[test]
    fn every_split_covers_its_block() {
        for f in QuantFormat::ALL
            .into_iter()
            .chain(QuantFormat::marlin_all())
        {
            if let Some(WeightLayout::Split { payload, meta }) = WeightLayout::for_format(f) {
                assert_eq!(payload.len() + meta.len(), f.block_bytes(), "{f}");
                assert_eq!(payload.len() % 4, 0, "{f} payload must be word aligned");
            }
        }
    }
}
