//! Legacy 32-element GGML blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1): block dequantizers.
//!
//! Nibble convention: byte j holds element j (low nibble) and element j+16 (high nibble).
//! Arithmetic order follows ggml's reference so results are bit-exact.

use super::fp::read_f16;

/// Bytes of one Q4_0 block.
pub const Q4_0_BYTES: usize = 18;
/// Bytes of one Q4_1 block.
pub const Q4_1_BYTES: usize = 20;
/// Bytes of one Q5_0 block.
pub const Q5_0_BYTES: usize = 22;
/// Bytes of one Q5_1 block.
pub const Q5_1_BYTES: usize = 24;
/// Bytes of one Q8_0 block.
pub const Q8_0_BYTES: usize = 34;
/// Bytes of one Q8_1 block.
pub const Q8_1_BYTES: usize = 36;

/// The 5-bit codes of a Q5 block: low nibbles from `qs`, fifth bits from the LE u32 `qh`.
/// Returns (code of element j, code of element j+16).
#[inline]
pub fn q5_codes(qh: u32, qs_j: u8, j: usize) -> (u8, u8) {
    let h0 = (((qh >> j) & 1) << 4) as u8;
    let h1 = (((qh >> (j + 16)) & 1) << 4) as u8;
    ((qs_j & 15) | h0, (qs_j >> 4) | h1)
}

/// Dequantize a Q4_0 block: y = (nibble − 8)·d.
pub fn dequant_q4_0(b: &[u8; Q4_0_BYTES], y: &mut [f32; 32]) {
    let d = read_f16([b[0], b[1]]);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = (i32::from(q & 15) - 8) as f32 * d;
        y[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// Dequantize a Q4_1 block: y = nibble·d + m.
pub fn dequant_q4_1(b: &[u8; Q4_1_BYTES], y: &mut [f32; 32]) {
    let d = read_f16([b[0], b[1]]);
    let m = read_f16([b[2], b[3]]);
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = f32::from(q & 15) * d + m;
        y[j + 16] = f32::from(q >> 4) * d + m;
    }
}

/// Dequantize a Q5_0 block: y = (code − 16)·d.
pub fn dequant_q5_0(b: &[u8; Q5_0_BYTES], y: &mut [f32; 32]) {
    let d = read_f16([b[0], b[1]]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for j in 0..16 {
        let (c0, c1) = q5_codes(qh, b[6 + j], j);
        y[j] = (i32::from(c0) - 16) as f32 * d;
        y[j + 16] = (i32::from(c1) - 16) as f32 * d;
    }
}

/// Dequantize a Q5_1 block: y = code·d + m.
pub fn dequant_q5_1(b: &[u8; Q5_1_BYTES], y: &mut [f32; 32]) {
    let d = read_f16([b[0], b[1]]);
    let m = read_f16([b[2], b[3]]);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for j in 0..16 {
        let (c0, c1) = q5_codes(qh, b[8 + j], j);
        y[j] = f32::from(c0) * d + m;
        y[j + 16] = f32::from(c1) * d + m;
    }
}

/// Dequantize a Q8_0 block: y = q·d.
pub fn dequant_q8_0(b: &[u8; Q8_0_BYTES], y: &mut [f32; 32]) {
    let d = read_f16([b[0], b[1]]);
    for (yj, &q) in y.iter_mut().zip(&b[2..]) {
        *yj = f32::from(q as i8) * d;
    }
}

/// Dequantize a Q8_1 block: y = q·d (the stored sum `s` is only used by dot products).
pub fn dequant_q8_1(b: &[u8; Q8_1_BYTES], y: &mut [f32; 32]) {
    let d = read_f16([b[0], b[1]]);
    for (yj, &q) in y.iter_mut().zip(&b[4..]) {
        *yj = f32::from(q as i8) * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q5_codes_pick_the_right_bits() {
        // Bit 3 → element 3's fifth bit; bit 19 → element 19 (= 3 + 16).
        let qh = (1u32 << 3) | (1 << 19);
        assert_eq!(q5_codes(qh, 0x21, 3), (17, 18));
        assert_eq!(q5_codes(qh, 0x21, 4), (1, 2));
    }
}
