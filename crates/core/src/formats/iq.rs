//! Non-linear 4-bit blocks (IQ4_NL, IQ4_XS): the shared value table, block dequantizers and
//! reference quantizers (a weighted scale search in the spirit of ggml's, not bit-equal to it).

use super::fp::{f16_to_f32, f32_to_f16, read_f16};
use super::legacy_quant::signed_absmax;

/// Bytes of one IQ4_NL block: d (f16), qs[16].
pub const IQ4_NL_BYTES: usize = 18;
/// Bytes of one IQ4_XS block: d (f16), scales_h (u16), scales_l[4], qs[128].
pub const IQ4_XS_BYTES: usize = 136;

/// The IQ4_NL / IQ4_XS code → value table (sorted ascending).
pub const IQ4_NL_TABLE: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Groups whose largest magnitude is below this get a zero scale.
const GROUP_EPS: f32 = 1e-15;

/// Signed 6-bit scale (ls − 32, in −32..=31) of IQ4_XS sub-block `ib` (0..8).
#[inline]
pub fn iq4xs_scale(scales_h: u16, scales_l: &[u8; 4], ib: usize) -> i32 {
    let lo = (scales_l[ib / 2] >> (4 * (ib % 2))) & 15;
    let hi = ((scales_h >> (2 * ib)) & 3) as u8;
    i32::from(lo | (hi << 4)) - 32
}

/// Decode 16 packed bytes (j / j+16 nibble convention) with scale `d` into 32 values.
#[inline]
fn decode_nl(qs: &[u8], d: f32, y: &mut [f32]) {
    for j in 0..16 {
        y[j] = d * f32::from(IQ4_NL_TABLE[usize::from(qs[j] & 15)]);
        y[j + 16] = d * f32::from(IQ4_NL_TABLE[usize::from(qs[j] >> 4)]);
    }
}

/// Dequantize an IQ4_NL block: y = d·T[nibble].
pub fn dequant_iq4_nl(b: &[u8; IQ4_NL_BYTES], y: &mut [f32; 32]) {
    decode_nl(&b[2..], read_f16([b[0], b[1]]), y);
}

/// Dequantize an IQ4_XS block: y = d·(ls_ib − 32)·T[nibble] per 32-element sub-block.
pub fn dequant_iq4_xs(b: &[u8; IQ4_XS_BYTES], y: &mut [f32; 256]) {
    let d = read_f16([b[0], b[1]]);
    let scales_h = u16::from_le_bytes([b[2], b[3]]);
    let scales_l = [b[4], b[5], b[6], b[7]];
    for (ib, ys) in y.chunks_exact_mut(32).enumerate() {
        let dl = d * iq4xs_scale(scales_h, &scales_l, ib) as f32;
        decode_nl(&b[8 + 16 * ib..8 + 16 * ib + 16], dl, ys);
    }
}

/// Index of the table entry nearest to `v` (ties → lower index).
#[inline]
pub fn iq4_nl_best_index(v: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = f32::INFINITY;
    for (i, &t) in IQ4_NL_TABLE.iter().enumerate() {
        let err = (f32::from(t) - v).abs();
        if err < best_err {
            best_err = err;
            best = i as u8;
        }
    }
    best
}

/// Best scale for 32 values on the table: tries d = max/(T[0] + t) for t in −7..=7, assigns
/// nearest codes, refits d by weighted least squares (weights x²) and keeps the best fit.
fn best_group_scale(x: &[f32]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_EPS {
        return 0.0;
    }
    let fit = |id: f32| {
        let (mut sqx, mut sq2) = (0f32, 0f32);
        for &v in x {
            let q = f32::from(IQ4_NL_TABLE[usize::from(iq4_nl_best_index(id * v))]);
            let w = v * v;
            sqx += w * q * v;
            sq2 += w * q * q;
        }
        (sqx, sq2)
    };
    let t0 = f32::from(IQ4_NL_TABLE[0]);
    let (sqx, sq2) = fit(t0 / max);
    let mut d = if sq2 > 0.0 { sqx / sq2 } else { max / t0 };
    let mut best = d * sqx;
    for t in -7..=7 {
        let (sqx, sq2) = fit((t as f32 + t0) / max);
        if sq2 > 0.0 && sqx * sqx > best * sq2 {
            d = sqx / sq2;
            best = d * sqx;
        }
    }
    d
}

/// Encode 32 values with scale `d` into 16 packed bytes.
#[inline]
fn encode_nl(x: &[f32], d: f32, qs: &mut [u8]) {
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for j in 0..16 {
        qs[j] = iq4_nl_best_index(x[j] * id) | (iq4_nl_best_index(x[j + 16] * id) << 4);
    }
}

/// Quantize 32 values to IQ4_NL (scale search, codes chosen against the f16-rounded scale).
pub fn quant_iq4_nl(x: &[f32; 32], b: &mut [u8; IQ4_NL_BYTES]) {
    let dh = f32_to_f16(best_group_scale(x));
    b[..2].copy_from_slice(&dh.to_le_bytes());
    encode_nl(x, f16_to_f32(dh), &mut b[2..]);
}

/// Quantize 256 values to IQ4_XS: per-group best scales, one f16 d = −max_scale/32, 6-bit
/// signed group scales, codes against the final group scale.
pub fn quant_iq4_xs(x: &[f32; 256], b: &mut [u8; IQ4_XS_BYTES]) {
    let mut scales = [0f32; 8];
    for (s, xs) in scales.iter_mut().zip(x.chunks_exact(32)) {
        *s = best_group_scale(xs);
    }
    let (max_scale, _) = signed_absmax(&scales);
    let dh = f32_to_f16(max_scale / -32.0);
    let d = f16_to_f32(dh);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    b.fill(0);
    b[..2].copy_from_slice(&dh.to_le_bytes());
    let mut scales_h = 0u16;
    for (ib, xs) in x.chunks_exact(32).enumerate() {
        let l = ((id * scales[ib]).round_ties_even() as i32).clamp(-32, 31);
        let ls = (l + 32) as u8;
        b[4 + ib / 2] |= (ls & 15) << (4 * (ib % 2));
        scales_h |= u16::from(ls >> 4) << (2 * ib);
        encode_nl(xs, d * l as f32, &mut b[8 + 16 * ib..8 + 16 * ib + 16]);
    }
    b[2..4].copy_from_slice(&scales_h.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_index_is_nearest() {
        assert_eq!(iq4_nl_best_index(-200.0), 0);
        assert_eq!(iq4_nl_best_index(0.0), 8);
        assert_eq!(iq4_nl_best_index(-5.0), 7);
        assert_eq!(iq4_nl_best_index(100.0), 14);
        assert_eq!(iq4_nl_best_index(500.0), 15);
    }

    #[test]
    fn iq4xs_scale_bits() {
        // ib 3: high nibble of scales_l[1], bits 6..7 of scales_h.
        let sl = [0u8, 0xA0, 0, 0];
        assert_eq!(iq4xs_scale(0b11 << 6, &sl, 3), (0xA | (3 << 4)) - 32);
        assert_eq!(iq4xs_scale(0, &sl, 2), -32);
    }
}
