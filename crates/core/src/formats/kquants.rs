//! K-quant super-blocks (256 elements: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K): layouts, scale
//! unpacking helpers and block dequantizers, in ggml's arithmetic order (bit-exact).

use super::fp::read_f16;

/// Bytes of one Q2_K block: scales[16], qs[64], d, dmin.
pub const Q2_K_BYTES: usize = 84;
/// Bytes of one Q3_K block: hmask[32], qs[64], scales[12], d.
pub const Q3_K_BYTES: usize = 110;
/// Bytes of one Q4_K block: d, dmin, scales[12], qs[128].
pub const Q4_K_BYTES: usize = 144;
/// Bytes of one Q5_K block: d, dmin, scales[12], qh[32], qs[128].
pub const Q5_K_BYTES: usize = 176;
/// Bytes of one Q6_K block: ql[128], qh[64], scales[16] (i8), d.
pub const Q6_K_BYTES: usize = 210;
/// Bytes of one Q8_K block: d (f32), qs[256] (i8), bsums[16] (i16).
pub const Q8_K_BYTES: usize = 292;

/// Q4_K/Q5_K packed 6-bit (scale, min) of sub-block `j` (0..8) from the 12 scale bytes.
#[inline]
pub fn q4k_scale_min(scales: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 15) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// Pack eight 6-bit (scale, min) pairs into Q4_K/Q5_K's 12 scale bytes (inverse of
/// [`q4k_scale_min`]; values are masked to 6 bits).
pub fn q4k_pack_scales(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        let (a, m) = (sc[j] & 63, mn[j] & 63);
        if j < 4 {
            s[j] |= a;
            s[j + 4] |= m;
        } else {
            s[j + 4] = (a & 15) | ((m & 15) << 4);
            s[j - 4] |= (a >> 4) << 6;
            s[j] |= (m >> 4) << 6;
        }
    }
    s
}

/// Q3_K's sixteen signed 6-bit sub-block scales (already minus 32) from its 12 scale bytes.
pub fn q3k_scales(scales: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (k, o) in out.iter_mut().enumerate() {
        let low4 = if k < 8 {
            scales[k] & 15
        } else {
            scales[k - 8] >> 4
        };
        let high2 = (scales[8 + k % 4] >> (2 * (k / 4))) & 3;
        *o = (low4 | (high2 << 4)) as i8 - 32;
    }
    out
}

/// Pack sixteen Q3_K scales in −32..=31 into the 12 scale bytes (inverse of [`q3k_scales`]).
pub fn q3k_pack_scales(sc: &[i8; 16]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for (k, &v) in sc.iter().enumerate() {
        let l = (i32::from(v) + 32).clamp(0, 63) as u8;
        if k < 8 {
            s[k] |= l & 15;
        } else {
            s[k - 8] |= (l & 15) << 4;
        }
        s[8 + k % 4] |= (l >> 4) << (2 * (k / 4));
    }
    s
}

/// The `N`-byte field at `at` of a fixed-size block (offsets are constants, so this never fails).
#[inline]
fn sub<const N: usize>(b: &[u8], at: usize) -> &[u8; N] {
    &b[at..at + N].as_chunks::<N>().0[0]
}

/// Dequantize a Q2_K block: y = d·(sc&15)·q − dmin·(sc>>4) per 16-element sub-block.
pub fn dequant_q2_k(b: &[u8; Q2_K_BYTES], y: &mut [f32; 256]) {
    let scales = sub::<16>(b, 0);
    let qs = sub::<64>(b, 16);
    let d = read_f16([b[80], b[81]]);
    let dmin = read_f16([b[82], b[83]]);
    for (i, yi) in y.iter_mut().enumerate() {
        let (h, j, s, l) = (i / 128, (i % 128) / 32, (i % 32) / 16, i % 16);
        let sc = scales[i / 16];
        let dl = d * f32::from(sc & 15);
        let ml = dmin * f32::from(sc >> 4);
        let q = (qs[32 * h + 16 * s + l] >> (2 * j)) & 3;
        *yi = dl * f32::from(q) - ml;
    }
}

/// Dequantize a Q3_K block: y = d·sc·(q2 − (hbit ? 0 : 4)).
pub fn dequant_q3_k(b: &[u8; Q3_K_BYTES], y: &mut [f32; 256]) {
    let hmask = sub::<32>(b, 0);
    let qs = sub::<64>(b, 32);
    let sc = q3k_scales(sub::<12>(b, 96));
    let d = read_f16([b[108], b[109]]);
    for (i, yi) in y.iter_mut().enumerate() {
        let (h, j, s, l) = (i / 128, (i % 128) / 32, (i % 32) / 16, i % 16);
        let dl = d * f32::from(sc[i / 16]);
        let q2 = i32::from((qs[32 * h + 16 * s + l] >> (2 * j)) & 3);
        let hbit = (hmask[16 * s + l] >> (4 * h + j)) & 1;
        let q = q2 - if hbit != 0 { 0 } else { 4 };
        *yi = dl * q as f32;
    }
}

/// Dequantize a Q4_K block: y = d·sc·q − dmin·m per 32-element sub-block.
pub fn dequant_q4_k(b: &[u8; Q4_K_BYTES], y: &mut [f32; 256]) {
    let d = read_f16([b[0], b[1]]);
    let dmin = read_f16([b[2], b[3]]);
    let scales = sub::<12>(b, 4);
    let qs = sub::<128>(b, 16);
    for (sb, ys) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = q4k_scale_min(scales, sb);
        let (d1, m1) = (d * f32::from(sc), dmin * f32::from(m));
        let (g, shift) = (sb / 2, 4 * (sb % 2));
        for (l, yl) in ys.iter_mut().enumerate() {
            *yl = d1 * f32::from((qs[32 * g + l] >> shift) & 15) - m1;
        }
    }
}

/// Dequantize a Q5_K block: Q4_K plus a fifth bit (bit `sub` of qh[l]).
pub fn dequant_q5_k(b: &[u8; Q5_K_BYTES], y: &mut [f32; 256]) {
    let d = read_f16([b[0], b[1]]);
    let dmin = read_f16([b[2], b[3]]);
    let scales = sub::<12>(b, 4);
    let qh = sub::<32>(b, 16);
    let qs = sub::<128>(b, 48);
    for (sb, ys) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = q4k_scale_min(scales, sb);
        let (d1, m1) = (d * f32::from(sc), dmin * f32::from(m));
        let (g, shift) = (sb / 2, 4 * (sb % 2));
        for (l, yl) in ys.iter_mut().enumerate() {
            let q = ((qs[32 * g + l] >> shift) & 15) | (((qh[l] >> sb) & 1) << 4);
            *yl = d1 * f32::from(q) - m1;
        }
    }
}

/// The signed 6-bit code (−32..=31) of element `i` (0..256) of a Q6_K block.
#[inline]
pub fn q6k_code(ql: &[u8; 128], qh: &[u8; 64], i: usize) -> i8 {
    let (h, r) = (i / 128, i % 128);
    let (k, l) = (r / 32, r % 32);
    let low4 = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
    let high2 = (qh[32 * h + l] >> (2 * k)) & 3;
    (low4 | (high2 << 4)) as i8 - 32
}

/// Dequantize a Q6_K block: y = d·scales[i/16]·q.
pub fn dequant_q6_k(b: &[u8; Q6_K_BYTES], y: &mut [f32; 256]) {
    let ql = sub::<128>(b, 0);
    let qh = sub::<64>(b, 128);
    let scales = sub::<16>(b, 192);
    let d = read_f16([b[208], b[209]]);
    for (i, yi) in y.iter_mut().enumerate() {
        let sc = scales[i / 16] as i8;
        *yi = d * f32::from(sc) * f32::from(q6k_code(ql, qh, i));
    }
}

/// Dequantize a Q8_K block: y = d·q (d is a plain f32).
pub fn dequant_q8_k(b: &[u8; Q8_K_BYTES], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (yi, &q) in y.iter_mut().zip(&b[4..260]) {
        *yi = f32::from(q as i8) * d;
    }
}

/// The sixteen Q8_K group sums (Σ of qs over each 16 elements), as stored after qs.
pub fn q8k_bsums(b: &[u8; Q8_K_BYTES]) -> [i16; 16] {
    let mut out = [0i16; 16];
    for (k, o) in out.iter_mut().enumerate() {
        *o = i16::from_le_bytes([b[260 + 2 * k], b[261 + 2 * k]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4k_scales_pack_unpack() {
        let sc = [0, 1, 17, 63, 32, 45, 5, 62];
        let mn = [63, 2, 0, 33, 15, 16, 60, 1];
        let packed = q4k_pack_scales(&sc, &mn);
        for j in 0..8 {
            assert_eq!(q4k_scale_min(&packed, j), (sc[j], mn[j]));
        }
    }

    #[test]
    fn q3k_scales_pack_unpack() {
        let sc: [i8; 16] = [
            -32, -1, 0, 31, 5, -7, 12, -20, 30, -31, 1, 2, -3, 4, 16, -16,
        ];
        assert_eq!(q3k_scales(&q3k_pack_scales(&sc)), sc);
    }
}
