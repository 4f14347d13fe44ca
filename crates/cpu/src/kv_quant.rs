//! Quantized K/V rows for the paged cache: one byte per value (FP8 E4M3 or INT8 codes) plus
//! one f32 scale per token per kv head, for K and for V. Rows are dequantized as attention
//! reads them, never the whole cache at once.

use marlin_core::formats::minifloat::E4M3_MAX;
use marlin_core::formats::{e4m3_to_f32, f32_to_e4m3};

use crate::kv::KvRows;

/// The code of a [`QuantRows`] storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantCode {
    /// FP8 E4M3 ("fn"), scale `amax / 448`.
    Fp8E4M3,
    /// Signed 8-bit integer in −127..=127, scale `amax / 127`.
    Int8,
}

impl QuantCode {
    /// Largest code magnitude: the value `amax` maps to.
    fn max(self) -> f32 {
        match self {
            QuantCode::Fp8E4M3 => E4M3_MAX,
            QuantCode::Int8 => 127.0,
        }
    }

    /// Code of `x` (already divided by the scale).
    #[inline]
    fn encode(self, x: f32) -> u8 {
        match self {
            QuantCode::Fp8E4M3 => fast_e4m3(x),
            // `round` goes half away from zero; the clamp also maps NaN to 0 via `as`.
            QuantCode::Int8 => x.round().clamp(-127.0, 127.0) as i8 as u8,
        }
    }

    /// Value of every code (the lookup table rows are decoded through).
    fn table(self) -> Box<[f32; 256]> {
        let mut t = Box::new([0.0f32; 256]);
        for (c, v) in t.iter_mut().enumerate() {
            *v = match self {
                QuantCode::Fp8E4M3 => e4m3_to_f32(c as u8),
                QuantCode::Int8 => f32::from(c as u8 as i8),
            };
        }
        t
    }
}

/// Byte codes of K and V, `[block][slot][kv_head][head_dim]` each, with one scale per
/// `[block][slot][kv_head]` row.
#[derive(Debug, Clone)]
pub struct QuantRows {
    code: QuantCode,
    k: Vec<u8>,
    v: Vec<u8>,
    k_scale: Vec<f32>,
    v_scale: Vec<f32>,
    head_dim: usize,
    table: Box<[f32; 256]>,
}

impl QuantRows {
    /// Zeroed storage of `rows` head rows of `head_dim` values.
    pub(crate) fn new(code: QuantCode, rows: usize, head_dim: usize) -> Self {
        Self {
            code,
            k: vec![0; rows * head_dim],
            v: vec![0; rows * head_dim],
            k_scale: vec![0.0; rows],
            v_scale: vec![0.0; rows],
            head_dim,
            table: code.table(),
        }
    }

    /// The code type.
    pub fn code(&self) -> QuantCode {
        self.code
    }

    /// Quantizes `k` and `v` (whole head rows) into the rows starting at head row `first`.
    pub(crate) fn write(&mut self, first: usize, k: &[f32], v: &[f32]) {
        let hd = self.head_dim;
        for (i, (kh, vh)) in k.chunks_exact(hd).zip(v.chunks_exact(hd)).enumerate() {
            let r = first + i;
            let code = self.code;
            self.k_scale[r] = quantize_row(code, kh, &mut self.k[r * hd..(r + 1) * hd]);
            self.v_scale[r] = quantize_row(code, vh, &mut self.v[r * hd..(r + 1) * hd]);
        }
    }

    /// Copies `n` head rows from row `src` to row `dst` (codes and scales).
    pub(crate) fn copy_rows(&mut self, src: usize, dst: usize, n: usize) {
        let hd = self.head_dim;
        self.k.copy_within(src * hd..(src + n) * hd, dst * hd);
        self.v.copy_within(src * hd..(src + n) * hd, dst * hd);
        self.k_scale.copy_within(src..src + n, dst);
        self.v_scale.copy_within(src..src + n, dst);
    }

    #[inline]
    fn decode(&self, codes: &[u8], scale: f32, dst: &mut [f32]) {
        for (d, &c) in dst.iter_mut().zip(codes) {
            *d = self.table[c as usize] * scale;
        }
    }
}

/// Codes of `x` into `out` with the scale `amax / code max`; returns the scale (0 for an
/// all-zero row, whose codes are then all zero).
fn quantize_row(code: QuantCode, x: &[f32], out: &mut [u8]) -> f32 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = amax / code.max();
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    for (o, &v) in out.iter_mut().zip(x) {
        *o = code.encode(v * inv);
    }
    scale
}

/// f32 → E4M3 code with the rounding of [`f32_to_e4m3`] (nearest, ties to even, saturating
/// to ±448, NaN → 0x7F) by bit arithmetic: the codec's table search costs ~20x more, and
/// every K/V value written goes through this.
#[inline]
pub fn fast_e4m3(x: f32) -> u8 {
    if x.is_nan() {
        return f32_to_e4m3(x);
    }
    let a = x.abs();
    let mag = if a < 2f32.powi(-6) {
        // Subnormals are m·2^−9; m = 8 is the smallest normal's code (0x08), as wanted.
        (a * 512.0).round_ties_even() as u8
    } else {
        let b = a.to_bits();
        // Round the 23-bit mantissa to 3 bits, ties to even; a carry bumps the exponent.
        let r = b + 0x7_FFFF + ((b >> 20) & 1);
        let e = (r >> 23) as i32 - 127 + 7;
        let code = (e << 3) | ((r >> 20) & 7) as i32;
        code.min(0x7E) as u8
    };
    if x.is_sign_negative() && mag != 0 {
        mag | 0x80
    } else {
        mag
    }
}

impl KvRows for QuantRows {
    #[inline]
    fn k_row(&self, row: usize, dst: &mut [f32]) {
        let hd = self.head_dim;
        self.decode(&self.k[row * hd..][..hd], self.k_scale[row], dst);
    }

    #[inline]
    fn v_row(&self, row: usize, dst: &mut [f32]) {
        let hd = self.head_dim;
        self.decode(&self.v[row * hd..][..hd], self.v_scale[row], dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_e4m3_matches_the_codec() {
        let mut xs: Vec<f32> = vec![0.0, -0.0, 448.0, 449.0, 464.0, 480.0, 1e9, f32::INFINITY];
        // Every code's value, the midpoints between neighbours and points just around them.
        for c in 0u8..=0x7E {
            let v = e4m3_to_f32(c);
            let next = if c < 0x7E { e4m3_to_f32(c + 1) } else { 464.0 };
            let mid = (v + next) / 2.0;
            xs.extend([v, mid, mid.next_up(), mid.next_down(), v * 1.01, v * 0.99]);
        }
        xs.extend((0..20_000).map(|i| ((i as f32) * 0.6173).sin() * 500.0 * (i as f32 * 1e-4)));
        xs.extend((0..2_000).map(|i| i as f32 * 1e-5));
        for &x in &xs {
            for y in [x, -x] {
                assert_eq!(fast_e4m3(y), f32_to_e4m3(y), "x = {y:e}");
            }
        }
        assert_eq!(fast_e4m3(f32::NAN), f32_to_e4m3(f32::NAN));
    }
}
