//! Floating-point element formats: f16, bf16, E8M0 scales, E2M1 (FP4) and ggml's MXFP4 block.

/// Bytes of one ggml MXFP4 block: an E8M0 scale byte and 16 bytes of nibbles.
pub const MXFP4_BLOCK_BYTES: usize = 17;

/// E2M1 (FP4) code → value: sign bit 3, exponent bits 2..1 (bias 1), mantissa bit 0.
/// Code 8 is −0.
pub const E2M1_TABLE: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

/// ggml's MXFP4 table: E2M1 values doubled, paired with [`e8m0_to_f32_half`] scales
/// (`K2[c] · half(e) == E2M1(c) · 2^(e−127)`).
pub const MXFP4_KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// IEEE binary16 bits → f32 (exact).
#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// f32 → IEEE binary16 bits, round to nearest even (overflow → ±inf, NaN stays NaN).
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// Read a little-endian f16 at `b[0..2]` as f32.
#[inline]
pub fn read_f16(b: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(b))
}

/// bfloat16 bits → f32 (the upper half of an f32; exact).
#[inline]
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// f32 → bfloat16 bits with ggml's rule: round to nearest even on the dropped 16 bits,
/// NaN → quiet NaN (bit 6 of the result set).
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// E8M0 scale byte → 2^(e−127), as ggml decodes it: e = 0 gives 2^−127 (an f32 subnormal)
/// and e = 255 gives +inf (the OCP spec calls 0xFF NaN).
#[inline]
pub fn e8m0_to_f32(e: u8) -> f32 {
    let bits = if e == 0 {
        0x0040_0000
    } else {
        u32::from(e) << 23
    };
    f32::from_bits(bits)
}

/// Half of [`e8m0_to_f32`]: 2^(e−128), exact for every byte (e = 0 → 2^−128, e = 1 → 2^−127).
/// ggml's MXFP4 path multiplies this by [`MXFP4_KVALUES`].
#[inline]
pub fn e8m0_to_f32_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        (u32::from(e) - 1) << 23
    };
    f32::from_bits(bits)
}

/// Dequantize one ggml MXFP4 block (byte j: element j low nibble, element j+16 high nibble).
pub fn dequant_mxfp4(block: &[u8; MXFP4_BLOCK_BYTES], y: &mut [f32; 32]) {
    let d = e8m0_to_f32_half(block[0]);
    for j in 0..16 {
        let b = block[1 + j];
        y[j] = f32::from(MXFP4_KVALUES[usize::from(b & 15)]) * d;
        y[j + 16] = f32::from(MXFP4_KVALUES[usize::from(b >> 4)]) * d;
    }
}

/// The table index nearest to `x` among `MXFP4_KVALUES · d` (ties → the lower index).
#[inline]
fn best_mxfp4_index(x: f32, d: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = (f32::from(MXFP4_KVALUES[0]) * d - x).abs();
    for (i, &k) in MXFP4_KVALUES.iter().enumerate().skip(1) {
        let err = (f32::from(k) * d - x).abs();
        if err < best_err {
            best = i as u8;
            best_err = err;
        }
    }
    best
}

/// Quantize 32 values to one MXFP4 block with ggml's reference rule:
/// e = floor(log2(amax)) − 2 + 127, each element → the nearest table entry.
pub fn quant_mxfp4(x: &[f32; 32], block: &mut [u8; MXFP4_BLOCK_BYTES]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let e = if amax > 0.0 {
        // Saturating float→int cast: tiny amax clamps to 0, huge to 254 (0xFF would be NaN).
        (amax.log2().floor() - 2.0 + 127.0).clamp(0.0, 254.0) as u8
    } else {
        0
    };
    let d = e8m0_to_f32_half(e);
    block[0] = e;
    for j in 0..16 {
        let lo = best_mxfp4_index(x[j], d);
        let hi = best_mxfp4_index(x[j + 16], d);
        block[1 + j] = lo | (hi << 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e8m0_edges() {
        assert_eq!(e8m0_to_f32(127), 1.0);
        assert_eq!(e8m0_to_f32(0), 2f32.powi(-127));
        assert_eq!(e8m0_to_f32_half(127), 0.5);
        assert_eq!(e8m0_to_f32_half(0), 2f32.powi(-128));
        assert_eq!(e8m0_to_f32_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_to_f32_half(255), 2f32.powi(127));
        for c in 0..16 {
            assert_eq!(f32::from(MXFP4_KVALUES[c]) * 0.5, E2M1_TABLE[c]);
        }
    }

    #[test]
    fn bf16_rounding() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is the exact midpoint between bf16 1.0 and 1.0078125: ties to even (down).
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(bf16_to_f32(0xc000), -2.0);
    }

    #[test]
    fn mxfp4_round_trip_exact_values() {
        let mut x = [0f32; 32];
        for (i, v) in x.iter_mut().enumerate() {
            *v = E2M1_TABLE[i % 16] * 4.0;
        }
        let mut b = [0u8; MXFP4_BLOCK_BYTES];
        quant_mxfp4(&x, &mut b);
        // amax 24 → floor(log2) = 4 → e = 129 → scale 2^2.
        assert_eq!(b[0], 129);
        let mut y = [0f32; 32];
        dequant_mxfp4(&b, &mut y);
        assert_eq!(x, y);
    }
}
