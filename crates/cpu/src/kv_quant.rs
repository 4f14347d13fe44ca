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
            QuantCode::Fp8E4M3 => f32_to_e4m3(x),
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
