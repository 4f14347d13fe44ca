//! Reference quantizers for the legacy 32-element blocks, following ggml's `_ref` rules
//! (the activation-side Q8_0/Q8_1 rules are exact: d = amax/127, round half away from zero).

use super::fp::f32_to_f16;
use super::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES, Q8_1_BYTES};

/// The value with the largest magnitude (first one on ties), and that magnitude.
#[inline]
pub(crate) fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::MAX, -f32::MAX), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

#[inline]
fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Quantize 32 values to Q4_0: d = max/−8, q = min(15, trunc(x/d + 8.5)).
pub fn quant_q4_0(x: &[f32; 32], b: &mut [u8; Q4_0_BYTES]) {
    let (max, _) = signed_absmax(x);
    let d = max / -8.0;
    let id = inv(d);
    b[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    for j in 0..16 {
        let q0 = ((x[j] * id + 8.5) as u8).min(15);
        let q1 = ((x[j + 16] * id + 8.5) as u8).min(15);
        b[2 + j] = q0 | (q1 << 4);
    }
}

/// Quantize 32 values to Q4_1: d = (max−min)/15, m = min, q = min(15, trunc((x−m)/d + 0.5)).
pub fn quant_q4_1(x: &[f32; 32], b: &mut [u8; Q4_1_BYTES]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inv(d);
    b[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    b[2..4].copy_from_slice(&f32_to_f16(min).to_le_bytes());
    for j in 0..16 {
        let q0 = (((x[j] - min) * id + 0.5) as u8).min(15);
        let q1 = (((x[j + 16] - min) * id + 0.5) as u8).min(15);
        b[4 + j] = q0 | (q1 << 4);
    }
}

/// Pack 32 five-bit codes into (qh, qs).
fn pack_q5(codes: &[u8; 32], qh_out: &mut [u8], qs_out: &mut [u8]) {
    let mut qh = 0u32;
    for j in 0..16 {
        let (c0, c1) = (codes[j], codes[j + 16]);
        qs_out[j] = (c0 & 15) | ((c1 & 15) << 4);
        qh |= u32::from(c0 >> 4) << j;
        qh |= u32::from(c1 >> 4) << (j + 16);
    }
    qh_out.copy_from_slice(&qh.to_le_bytes());
}

/// Quantize 32 values to Q5_0: d = max/−16, q = min(31, trunc(x/d + 16.5)).
pub fn quant_q5_0(x: &[f32; 32], b: &mut [u8; Q5_0_BYTES]) {
    let (max, _) = signed_absmax(x);
    let d = max / -16.0;
    let id = inv(d);
    b[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    let codes = x.map(|v| ((v * id + 16.5) as u8).min(31));
    let (qh, qs) = b[2..].split_at_mut(4);
    pack_q5(&codes, qh, qs);
}

/// Quantize 32 values to Q5_1: d = (max−min)/31, m = min, q = min(31, trunc((x−m)/d + 0.5)).
pub fn quant_q5_1(x: &[f32; 32], b: &mut [u8; Q5_1_BYTES]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inv(d);
    b[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    b[2..4].copy_from_slice(&f32_to_f16(min).to_le_bytes());
    let codes = x.map(|v| (((v - min) * id + 0.5) as u8).min(31));
    let (qh, qs) = b[4..].split_at_mut(4);
    pack_q5(&codes, qh, qs);
}

/// Q8 codes with ggml's rule: d = amax/127, q = round_half_away(x/d). Returns (d, codes).
#[inline]
fn q8_codes(x: &[f32; 32]) -> (f32, [i8; 32]) {
    let (_, amax) = signed_absmax(x);
    let d = amax / 127.0;
    let id = inv(d);
    // `as i8` saturates; |x·id| ≤ 127 up to rounding anyway.
    (d, x.map(|v| (v * id).round() as i8))
}

/// Quantize 32 values to Q8_0 exactly as ggml's reference does.
pub fn quant_q8_0(x: &[f32; 32], b: &mut [u8; Q8_0_BYTES]) {
    let (d, q) = q8_codes(x);
    b[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    for (o, v) in b[2..].iter_mut().zip(q) {
        *o = v as u8;
    }
}

/// Quantize 32 values to Q8_1 exactly as ggml's reference does: Q8_0's codes plus
/// s = f16(d·Σq) (d before f16 rounding).
pub fn quant_q8_1(x: &[f32; 32], b: &mut [u8; Q8_1_BYTES]) {
    let (d, q) = q8_codes(x);
    let sum: i32 = q.iter().map(|&v| i32::from(v)).sum();
    b[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    b[2..4].copy_from_slice(&f32_to_f16(sum as f32 * d).to_le_bytes());
    for (o, v) in b[4..].iter_mut().zip(q) {
        *o = v as u8;
    }
}
