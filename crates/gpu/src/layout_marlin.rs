//! GPU layout of the metal-marlin formats (`WeightLayout::Units`). Rows may end in a tail
//! block, so the packed super-blocks are rearranged at upload into three regions:
//! 1. codes, unit-major: the 32-element unit `row * units + u` is `bits` words (4-bit and
//!    8-bit codes as packed, 2-bit as packed, 3-bit as its two low-bit words then its
//!    high-bit word);
//! 2. scales, from word `meta_offset`: one per (row, group), `row * groups_per_row + g`,
//!    f16 (fp4, int), UE4M3 byte (nvfp4) or f32 (fp8), as packed;
//! 3. from the next word boundary: the u8 zero points, one per (row, group) (int with
//!    zeros), or nvfp4's f32 tensor scale (one word).
//!
//! The kernels (`shaders/formats/marlin_common.wgsl`) index these with GROUP and SB.

use marlin_core::formats::marlin::row_blocks;
use marlin_core::QuantFormat;

use crate::layout::ChunkBytes;

/// Per-format constants of the unit layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitGeom {
    /// Bits per code (= words of codes per unit).
    pub bits: usize,
    /// Elements per scale group.
    pub group: usize,
    /// Bytes per stored scale.
    pub scale_bytes: usize,
    /// Whether region 3 holds zero points.
    pub zeros: bool,
    /// Whether region 3 holds nvfp4's tensor scale.
    pub global: bool,
}

/// The unit geometry of a metal-marlin `format` (`None` for other formats).
pub fn unit_geom(format: QuantFormat) -> Option<UnitGeom> {
    let g = |bits, group, scale_bytes, zeros, global| {
        Some(UnitGeom {
            bits,
            group,
            scale_bytes,
            zeros,
            global,
        })
    };
    match format {
        QuantFormat::Fp4(grp) => g(4, grp.size(), 2, false, false),
        QuantFormat::Nvfp4 => g(4, 16, 1, false, true),
        QuantFormat::Fp8 => g(8, 256, 4, false, false),
        QuantFormat::Int(i) => g(i.bits.bits() as usize, i.group.size(), 2, i.zeros, false),
        _ => None,
    }
}

impl UnitGeom {
    /// Scale groups per row of `cols` (the last may be partial).
    pub fn groups_per_row(&self, cols: usize) -> usize {
        cols.div_ceil(self.group)
    }

    fn regions(&self, rows: usize, cols: usize) -> (usize, usize, usize) {
        let codes = rows * (cols / 32) * self.bits * 4;
        let scales = rows * self.groups_per_row(cols) * self.scale_bytes;
        let extra = if self.zeros {
            rows * self.groups_per_row(cols)
        } else if self.global {
            4
        } else {
            0
        };
        (codes, scales, extra)
    }

    /// Sizes of a chunk of `rows` rows of `cols` (a multiple of 32).
    pub fn chunk_bytes(&self, rows: usize, cols: usize) -> ChunkBytes {
        let (codes, scales, extra) = self.regions(rows, cols);
        let meta = codes.div_ceil(16) * 16;
        let third = (meta + scales).div_ceil(4) * 4;
        ChunkBytes {
            total: ((third + extra).div_ceil(16) * 16) as u64,
            meta_offset_words: (meta / 4) as u64,
        }
    }

    /// Rearrange `rows` packed rows (`src`, each `row_bytes`) of `format` into the unit
    /// layout, handing `(byte offset, bytes)` pieces to `put` (buffers start zeroed).
    pub fn write_chunk(
        &self,
        format: QuantFormat,
        src: &[u8],
        rows: usize,
        cols: usize,
        mut put: impl FnMut(usize, &[u8]),
    ) {
        let (codes_len, scales_len, _) = self.regions(rows, cols);
        let meta = codes_len.div_ceil(16) * 16;
        let third = (meta + scales_len).div_ceil(4) * 4;
        let row_bytes = src.len().checked_div(rows).unwrap_or(0);
        let per_row_codes = (cols / 32) * self.bits * 4;
        let gpr = self.groups_per_row(cols);
        let mut codes = Vec::with_capacity(per_row_codes);
        let mut scales = Vec::with_capacity(gpr * self.scale_bytes);
        let mut zeros = Vec::with_capacity(gpr);
        for (r, row) in src.chunks_exact(row_bytes.max(1)).take(rows).enumerate() {
            codes.clear();
            scales.clear();
            zeros.clear();
            let mut at = 0;
            for geo in row_blocks(format, cols) {
                let blk = &row[at..at + geo.bytes];
                if self.bits == 3 {
                    // Planes (n/4 bytes of low bits, n/8 of high bits) to units of 12.
                    let (lo, hi) = blk[..geo.scales_at].split_at(geo.n / 4);
                    for (l, h) in lo.chunks_exact(8).zip(hi.chunks_exact(4)) {
                        codes.extend_from_slice(l);
                        codes.extend_from_slice(h);
                    }
                } else {
                    codes.extend_from_slice(&blk[..geo.scales_at]);
                }
                let s_end = geo.scales_at + geo.groups * geo.scale_bytes;
                scales.extend_from_slice(&blk[geo.scales_at..s_end]);
                if self.zeros {
                    zeros.extend_from_slice(&blk[geo.zeros_at..geo.zeros_at + geo.groups]);
                }
                if self.global && r == 0 && at == 0 {
                    put(third, &blk[geo.global_at..geo.global_at + 4]);
                }
                at += geo.bytes;
            }
            put(r * per_row_codes, &codes);
            put(meta + r * scales.len(), &scales);
            if self.zeros {
                put(third + r * gpr, &zeros);
            }
        }
    }
}
