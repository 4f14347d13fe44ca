//! The trellis weight format (QTIP/EXL3-style bitshift trellis, 2–4 bits per weight):
//! names, byte layout and the reference dequantization.
//!
//! A tensor `[n, k]` (n outputs, k inputs; both multiples of 16) is cut into 16×16 tiles,
//! tile `(tn, tk)` in order tn outer, tk inner; position `t` of a tile is row `t/16`,
//! column `t%16`. Bytes: `[all tiles' 8·K u32 words][suh: k f32][svh: n f32]`, little-endian.
//! The weight is `W = diag(svh) · H_n · Q · H_k · diag(suh)` with `Q` the decoded values and
//! `H_*` block-diagonal normalized Sylvester Hadamards of block [`had_block`] along n / k, so
//! `y = W·x = svh ⊙ H_n(Q · H_k(suh ⊙ x))`. Codebooks and the bitstream rule:
//! [`super::trellis_code`]. Stacked tensors `[e, n, k]` repeat the whole layout per matrix.

pub use super::trellis_code::{
    check_bits, decode_value, pack_states, pack_tile, stream_bits, tile_state, tile_words,
    Codebook, TILE,
};
use crate::hadamard::rotate;
use crate::{Error, Result};

/// A trellis format: `bits` per weight (2..=4) and the codebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrellisFormat {
    pub bits: u8,
    pub codebook: Codebook,
}

/// Names with an explicit codebook, indexed by bits − 2 and [`Codebook`] order.
const NAMES: [[&str; 3]; 3] = [
    ["trellis2_3inst", "trellis2_mcg", "trellis2_mul1"],
    ["trellis3_3inst", "trellis3_mcg", "trellis3_mul1"],
    ["trellis4_3inst", "trellis4_mcg", "trellis4_mul1"],
];
/// Short names (default codebook), indexed by bits − 2.
const SHORT: [&str; 3] = ["trellis2", "trellis3", "trellis4"];

impl TrellisFormat {
    /// A format with `bits` (2..=4) and `codebook`.
    pub fn new(bits: u32, codebook: Codebook) -> Result<Self> {
        let bits = check_bits(bits)?;
        Ok(Self {
            bits: bits as u8,
            codebook,
        })
    }

    /// Every trellis format (3 widths × 3 codebooks).
    pub fn all() -> Vec<TrellisFormat> {
        let mut v = Vec::new();
        for bits in 2..=4u8 {
            for codebook in Codebook::ALL {
                v.push(TrellisFormat { bits, codebook });
            }
        }
        v
    }

    /// Stable name: `trellisK` with the default codebook, else `trellisK_<codebook>`.
    /// An out-of-range width (not built through [`TrellisFormat::new`]) prints `trellis?`.
    pub fn name(self) -> &'static str {
        let Some(i) = (self.bits as usize).checked_sub(2).filter(|&i| i < 3) else {
            return "trellis?";
        };
        if self.codebook == Codebook::DEFAULT {
            SHORT[i]
        } else {
            NAMES[i][self.codebook.index()]
        }
    }

    /// Parse `trellisK` or `trellisK_<codebook>` (case-insensitive).
    pub fn from_name(s: &str) -> Option<TrellisFormat> {
        let s = s.to_ascii_lowercase();
        let rest = s.strip_prefix("trellis")?;
        let (bits, cb) = match rest.split_once('_') {
            Some((b, c)) => (b, Codebook::from_name(c)?),
            None => (rest, Codebook::DEFAULT),
        };
        let bits: u32 = bits.parse().ok()?;
        Self::new(bits, cb).ok()
    }

    /// Bits per weight as u32.
    pub fn k(self) -> u32 {
        u32::from(self.bits)
    }

    /// Bytes of one tile's words (`32·K`).
    pub fn tile_bytes(self) -> usize {
        4 * tile_words(self.k())
    }
}

/// The block-Hadamard size along a dimension of `dim` (a multiple of 16): the largest power
/// of two ≤ 128 dividing it.
pub fn had_block(dim: usize) -> usize {
    let mut b = 128;
    while b > 1 && !dim.is_multiple_of(b) {
        b /= 2;
    }
    b
}

/// Byte layout of one trellis matrix `[n, k]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrellisLayout {
    pub format: TrellisFormat,
    pub n: usize,
    pub k: usize,
    /// Tiles along k (`k/16`); tile `(tn, tk)` starts at byte `(tn·tiles_k + tk)·tile_bytes`.
    pub tiles_k: usize,
    /// Bytes of one tile.
    pub tile_bytes: usize,
    /// Offset of `suh` (k f32) = bytes of all tiles.
    pub suh_at: usize,
    /// Offset of `svh` (n f32).
    pub svh_at: usize,
    /// Total bytes.
    pub bytes: usize,
}

/// The layout of a `[n, k]` matrix; errors when `n` or `k` is not a positive multiple of 16
/// or the width is not 2..=4.
pub fn layout(format: TrellisFormat, n: usize, k: usize) -> Result<TrellisLayout> {
    check_bits(format.k())?;
    if n == 0 || k == 0 || !n.is_multiple_of(16) || !k.is_multiple_of(16) {
        return Err(Error::Shape(format!(
            "{}: tensor [{n}, {k}] refused, n and k must be positive multiples of 16",
            format.name()
        )));
    }
    let tile_bytes = format.tile_bytes();
    let overflow = || Error::Overflow(format!("{} [{n}, {k}]", format.name()));
    let suh_at = (n / 16)
        .checked_mul(k / 16)
        .and_then(|t| t.checked_mul(tile_bytes))
        .ok_or_else(overflow)?;
    let svh_at = suh_at.checked_add(4 * k).ok_or_else(overflow)?;
    let bytes = svh_at.checked_add(4 * n).ok_or_else(overflow)?;
    Ok(TrellisLayout {
        format,
        n,
        k,
        tiles_k: k / 16,
        tile_bytes,
        suh_at,
        svh_at,
        bytes,
    })
}

/// Bytes of a trellis tensor of `shape` (`[.., n, k]`; outer dimensions repeat the layout).
pub fn nbytes(format: TrellisFormat, shape: &[usize]) -> Result<usize> {
    let [outer @ .., n, k] = shape else {
        return Err(Error::Shape(format!(
            "{}: tensor {shape:?} needs at least 2 dimensions",
            format.name()
        )));
    };
    let one = layout(format, *n, *k)?.bytes;
    outer.iter().try_fold(one, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::Overflow(format!("{shape:?}")))
    })
}

/// Read `len` little-endian f32 at byte `at`.
pub fn read_f32s(bytes: &[u8], at: usize, len: usize) -> Result<Vec<f32>> {
    let src = at
        .checked_add(4 * len)
        .and_then(|end| bytes.get(at..end))
        .ok_or_else(|| Error::Shape(format!("{len} f32 at {at} past {} bytes", bytes.len())))?;
    Ok(src
        .as_chunks::<4>()
        .0
        .iter()
        .map(|b| f32::from_le_bytes(*b))
        .collect())
}

/// Read tile `index`'s words (little-endian u32) into `out` (length `8·K`).
#[inline]
pub fn read_tile(lay: &TrellisLayout, bytes: &[u8], index: usize, out: &mut [u32]) -> Result<()> {
    let at = index * lay.tile_bytes;
    let src = bytes
        .get(at..at + lay.tile_bytes)
        .filter(|_| out.len() * 4 == lay.tile_bytes)
        .ok_or_else(|| Error::Shape(format!("tile {index} outside {} bytes", bytes.len())))?;
    for (w, b) in out.iter_mut().zip(src.as_chunks::<4>().0) {
        *w = u32::from_le_bytes(*b);
    }
    Ok(())
}

/// Decode a tile's 256 values (reference, one `tile_state` per position).
pub fn decode_tile(format: TrellisFormat, words: &[u32], out: &mut [f32]) -> Result<()> {
    if out.len() != TILE {
        return Err(Error::Shape(format!("decode_tile: {} outputs", out.len())));
    }
    for (t, y) in out.iter_mut().enumerate() {
        *y = decode_value(format.codebook, tile_state(words, format.k(), t)?);
    }
    Ok(())
}

/// Decode the raw codebook values `Q` (`[n, k]` row-major) of one matrix, no scales or
/// rotations.
pub fn decode_q(format: TrellisFormat, bytes: &[u8], n: usize, k: usize) -> Result<Vec<f32>> {
    let lay = layout(format, n, k)?;
    if bytes.len() != lay.bytes {
        return Err(Error::Shape(format!(
            "{}: [{n}, {k}] needs {} bytes, got {}",
            format.name(),
            lay.bytes,
            bytes.len()
        )));
    }
    let mut q = vec![0f32; n * k];
    let mut words = vec![0u32; tile_words(format.k())];
    let mut vals = [0f32; TILE];
    for tn in 0..n / 16 {
        for tk in 0..lay.tiles_k {
            read_tile(&lay, bytes, tn * lay.tiles_k + tk, &mut words)?;
            decode_tile(format, &words, &mut vals)?;
            for (r, row) in vals.chunks_exact(16).enumerate() {
                let at = (tn * 16 + r) * k + tk * 16;
                q[at..at + 16].copy_from_slice(row);
            }
        }
    }
    Ok(q)
}

/// Dequantize one matrix to f32 `[n, k]` row-major: `W = diag(svh)·H_n·Q·H_k·diag(suh)`.
pub fn dequantize(format: TrellisFormat, bytes: &[u8], n: usize, k: usize) -> Result<Vec<f32>> {
    let mut w = decode_q(format, bytes, n, k)?;
    let lay = layout(format, n, k)?;
    let suh = read_f32s(bytes, lay.suh_at, k)?;
    let svh = read_f32s(bytes, lay.svh_at, n)?;
    // Q·H_k: rotate every row (H is symmetric).
    rotate(&mut w, had_block(k))?;
    // H_n·(..): rotate every column.
    let mut col = vec![0f32; n];
    for j in 0..k {
        for (i, c) in col.iter_mut().enumerate() {
            *c = w[i * k + j];
        }
        rotate(&mut col, had_block(n))?;
        for (i, c) in col.iter().enumerate() {
            w[i * k + j] = c * svh[i] * suh[j];
        }
    }
    Ok(w)
}

/// Dequantize a (possibly stacked, `[.., n, k]`) trellis tensor to f32, matrix by matrix.
pub fn dequantize_stacked(
    format: TrellisFormat,
    bytes: &[u8],
    shape: &[usize],
) -> Result<Vec<f32>> {
    let total = nbytes(format, shape)?;
    let [.., n, k] = shape else {
        return Err(Error::Shape(format!("trellis tensor {shape:?}")));
    };
    if bytes.len() != total {
        return Err(Error::Shape(format!(
            "{}: {shape:?} needs {total} bytes, got {}",
            format.name(),
            bytes.len()
        )));
    }
    let one = layout(format, *n, *k)?.bytes;
    let mut out = Vec::with_capacity(total / one * n * k);
    for m in bytes.chunks_exact(one) {
        out.extend(dequantize(format, m, *n, *k)?);
    }
    Ok(out)
}
