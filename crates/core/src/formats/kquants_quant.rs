//! Reference K-quant quantizers. Q8_K follows ggml's rule exactly (it quantizes activations);
//! Q2_K..Q6_K use a simple max-based scheme (per sub-block scale/min, then the scales are
//! quantized under an f16 super-scale and every code is re-chosen against the decoded scales).
//! They are accurate enough for tests and synthetic models, not bit-equal to ggml's search.

use super::fp::{f16_to_f32, f32_to_f16};
use super::kquants::{
    q3k_pack_scales, q4k_pack_scales, Q2_K_BYTES, Q3_K_BYTES, Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES,
    Q8_K_BYTES,
};
use super::legacy_quant::signed_absmax;

#[inline]
fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Affine sub-block parameters (scale ≥ 0, min ≥ 0) so that x ≈ scale·q − min, q ∈ 0..=nmax.
/// The offset is clamped so zero stays representable (K-quants store only −min ≤ 0).
/// Starts from the min/max range, then refits (scale, offset) by least squares on the chosen
/// codes a few times (offset kept ≤ 0), keeping the fit only when it lowers the error.
fn affine_params(x: &[f32], nmax: f32) -> (f32, f32) {
    let (lo, hi) = x
        .iter()
        .fold((0f32, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (mut s, mut m) = ((hi - lo).max(0.0) / nmax, -lo);
    let sse = |s: f32, m: f32| -> f32 {
        x.iter()
            .map(|&v| (s * affine_code(v, s, m, nmax as u8) as f32 - m - v).powi(2))
            .sum()
    };
    let mut best = sse(s, m);
    for _ in 0..4 {
        let n = x.len() as f32;
        let (mut sq, mut sq2, mut sx, mut sqx) = (0f32, 0f32, 0f32, 0f32);
        for &v in x {
            let q = f32::from(affine_code(v, s, m, nmax as u8));
            (sq, sq2, sx, sqx) = (sq + q, sq2 + q * q, sx + v, sqx + q * v);
        }
        let det = n * sq2 - sq * sq;
        if det <= 0.0 {
            break;
        }
        let mut ns = (n * sqx - sq * sx) / det;
        let mut off = (sx - ns * sq) / n;
        if off > 0.0 {
            (ns, off) = (if sq2 > 0.0 { sqx / sq2 } else { 0.0 }, 0.0);
        }
        let e = sse(ns, -off);
        if !(ns > 0.0 && e < best) {
            break;
        }
        (s, m, best) = (ns, -off, e);
    }
    (s, m)
}

/// Quantize non-negative `vals` to integers in 0..=qmax under one f16 scale; returns the
/// scale's f16 bits and its decoded value.
fn quant_unsigned_scales(vals: &[f32], qmax: u8, out: &mut [u8]) -> (u16, f32) {
    let max = vals.iter().fold(0f32, |m, &v| m.max(v));
    let dh = f32_to_f16(max / f32::from(qmax));
    let d = f16_to_f32(dh);
    let id = inv(d);
    for (o, &v) in out.iter_mut().zip(vals) {
        *o = (v * id).round().clamp(0.0, f32::from(qmax)) as u8;
    }
    (dh, d)
}

/// Quantize signed `vals` to integers in −qneg..=qneg−1 under one f16 scale chosen so the
/// largest-magnitude value maps to −qneg; returns the scale's f16 bits and decoded value.
fn quant_signed_scales(vals: &[f32], qneg: i32, out: &mut [i32]) -> (u16, f32) {
    let (max, _) = signed_absmax(vals);
    let dh = f32_to_f16(max / -(qneg as f32));
    let d = f16_to_f32(dh);
    let id = inv(d);
    for (o, &v) in out.iter_mut().zip(vals) {
        *o = ((v * id).round() as i32).clamp(-qneg, qneg - 1);
    }
    (dh, d)
}

/// Symmetric sub-block scale for codes in −qneg..=qneg−1: tries max/(−qneg + δ) for a few δ,
/// each refit once by least squares (Σqx/Σq²), and keeps the lowest squared error.
fn symmetric_scale(x: &[f32], qneg: i32) -> f32 {
    let (max, _) = signed_absmax(x);
    let code = |v: f32, s: f32| ((v * inv(s)).round() as i32).clamp(-qneg, qneg - 1) as f32;
    let sse = |s: f32| -> f32 { x.iter().map(|&v| (s * code(v, s) - v).powi(2)).sum() };
    let mut best = (max / -(qneg as f32), f32::INFINITY);
    for step in 0..5 {
        let s0 = max / (step as f32 * 0.25 - qneg as f32);
        let (sqx, sq2) = x.iter().fold((0f32, 0f32), |(a, b), &v| {
            let q = code(v, s0);
            (a + q * v, b + q * q)
        });
        for s in [s0, if sq2 > 0.0 { sqx / sq2 } else { s0 }] {
            let e = sse(s);
            if e < best.1 {
                best = (s, e);
            }
        }
    }
    best.0
}

/// Affine codes for 2-, 4- or 5-bit K-quants: q = clamp(round((x + ml)/dl), 0, nmax).
#[inline]
fn affine_code(x: f32, dl: f32, ml: f32, nmax: u8) -> u8 {
    ((x + ml) * inv(dl)).round().clamp(0.0, f32::from(nmax)) as u8
}

/// Quantize 256 values to Q2_K (16 sub-blocks of 16, 4-bit scales and mins).
pub fn quant_q2_k(x: &[f32; 256], b: &mut [u8; Q2_K_BYTES]) {
    let (mut scale, mut min) = ([0f32; 16], [0f32; 16]);
    for (k, xs) in x.chunks_exact(16).enumerate() {
        (scale[k], min[k]) = affine_params(xs, 3.0);
    }
    let (mut sc, mut mn) = ([0u8; 16], [0u8; 16]);
    let (dh, d) = quant_unsigned_scales(&scale, 15, &mut sc);
    let (mh, dmin) = quant_unsigned_scales(&min, 15, &mut mn);
    b.fill(0);
    for k in 0..16 {
        b[k] = sc[k] | (mn[k] << 4);
    }
    for (i, &v) in x.iter().enumerate() {
        let k = i / 16;
        let q = affine_code(v, d * f32::from(sc[k]), dmin * f32::from(mn[k]), 3);
        let (h, j, s, l) = (i / 128, (i % 128) / 32, (i % 32) / 16, i % 16);
        b[16 + 32 * h + 16 * s + l] |= q << (2 * j);
    }
    b[80..82].copy_from_slice(&dh.to_le_bytes());
    b[82..84].copy_from_slice(&mh.to_le_bytes());
}

/// Quantize 256 values to Q3_K (16 sub-blocks of 16, signed 6-bit scales, codes −4..=3).
pub fn quant_q3_k(x: &[f32; 256], b: &mut [u8; Q3_K_BYTES]) {
    let mut scale = [0f32; 16];
    for (s, xs) in scale.iter_mut().zip(x.chunks_exact(16)) {
        *s = symmetric_scale(xs, 4);
    }
    let mut sc = [0i32; 16];
    let (dh, d) = quant_signed_scales(&scale, 32, &mut sc);
    b.fill(0);
    for (i, &v) in x.iter().enumerate() {
        let dl = d * sc[i / 16] as f32;
        let q = ((v * inv(dl)).round() as i32).clamp(-4, 3) + 4;
        let (h, j, s, l) = (i / 128, (i % 128) / 32, (i % 32) / 16, i % 16);
        b[32 + 32 * h + 16 * s + l] |= ((q & 3) as u8) << (2 * j);
        if q >= 4 {
            b[16 * s + l] |= 1 << (4 * h + j);
        }
    }
    let sc8 = sc.map(|v| v as i8);
    b[96..108].copy_from_slice(&q3k_pack_scales(&sc8));
    b[108..110].copy_from_slice(&dh.to_le_bytes());
}

/// Shared Q4_K/Q5_K encoder: writes d, dmin and the scales, returns the codes (0..=nmax).
fn quant_q45_k(x: &[f32; 256], nmax: u8, head: &mut [u8]) -> [u8; 256] {
    let (mut scale, mut min) = ([0f32; 8], [0f32; 8]);
    for (k, xs) in x.chunks_exact(32).enumerate() {
        (scale[k], min[k]) = affine_params(xs, f32::from(nmax));
    }
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    let (dh, d) = quant_unsigned_scales(&scale, 63, &mut sc);
    let (mh, dmin) = quant_unsigned_scales(&min, 63, &mut mn);
    head[0..2].copy_from_slice(&dh.to_le_bytes());
    head[2..4].copy_from_slice(&mh.to_le_bytes());
    head[4..16].copy_from_slice(&q4k_pack_scales(&sc, &mn));
    let mut codes = [0u8; 256];
    for (i, (c, &v)) in codes.iter_mut().zip(x).enumerate() {
        let k = i / 32;
        *c = affine_code(v, d * f32::from(sc[k]), dmin * f32::from(mn[k]), nmax);
    }
    codes
}

/// Quantize 256 values to Q4_K (8 sub-blocks of 32, 6-bit scales and mins, codes 0..=15).
pub fn quant_q4_k(x: &[f32; 256], b: &mut [u8; Q4_K_BYTES]) {
    b.fill(0);
    let codes = quant_q45_k(x, 15, &mut b[..16]);
    for (i, &q) in codes.iter().enumerate() {
        let (sb, l) = (i / 32, i % 32);
        b[16 + 32 * (sb / 2) + l] |= q << (4 * (sb % 2));
    }
}

/// Quantize 256 values to Q5_K (Q4_K plus a fifth code bit, codes 0..=31).
pub fn quant_q5_k(x: &[f32; 256], b: &mut [u8; Q5_K_BYTES]) {
    b.fill(0);
    let codes = quant_q45_k(x, 31, &mut b[..16]);
    for (i, &q) in codes.iter().enumerate() {
        let (sb, l) = (i / 32, i % 32);
        b[48 + 32 * (sb / 2) + l] |= (q & 15) << (4 * (sb % 2));
        b[16 + l] |= (q >> 4) << sb;
    }
}

/// Quantize 256 values to Q6_K (16 sub-blocks of 16, int8 scales, codes −32..=31).
pub fn quant_q6_k(x: &[f32; 256], b: &mut [u8; Q6_K_BYTES]) {
    let mut scale = [0f32; 16];
    for (s, xs) in scale.iter_mut().zip(x.chunks_exact(16)) {
        *s = symmetric_scale(xs, 32);
    }
    let mut sc = [0i32; 16];
    let (dh, d) = quant_signed_scales(&scale, 128, &mut sc);
    b.fill(0);
    for (i, &v) in x.iter().enumerate() {
        let dl = d * sc[i / 16] as f32;
        let q = (((v * inv(dl)).round() as i32).clamp(-32, 31) + 32) as u8;
        let (h, r) = (i / 128, i % 128);
        let (k, l) = (r / 32, r % 32);
        b[64 * h + 32 * (k & 1) + l] |= (q & 15) << (4 * (k >> 1));
        b[128 + 32 * h + l] |= (q >> 4) << (2 * k);
    }
    for (o, &s) in b[192..208].iter_mut().zip(&sc) {
        *o = s as i8 as u8;
    }
    b[208..210].copy_from_slice(&dh.to_le_bytes());
}

/// Quantize 256 values to Q8_K exactly as ggml's reference does: iscale = −127/max (max =
/// the largest-magnitude value), q = min(127, round_half_even(iscale·x)), d = 1/iscale,
/// bsums = sums of 16 codes. An all-zero block is all zeros.
pub fn quant_q8_k(x: &[f32; 256], b: &mut [u8; Q8_K_BYTES]) {
    b.fill(0);
    let (max, amax) = signed_absmax(x);
    if amax == 0.0 {
        return;
    }
    let iscale = -127.0 / max;
    for (o, &v) in b[4..260].iter_mut().zip(x) {
        *o = ((iscale * v).round_ties_even() as i32).clamp(-128, 127) as i8 as u8;
    }
    for k in 0..16 {
        let s: i32 = b[4 + 16 * k..20 + 16 * k]
            .iter()
            .map(|&q| i32::from(q as i8))
            .sum();
        b[260 + 2 * k..262 + 2 * k].copy_from_slice(&(s as i16).to_le_bytes());
    }
    b[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}
