//! Block-layout helpers shared by the scalar and SIMD kernels: field offsets of the
//! 32-element formats and the 6-bit scale/min unpacking of Q4_K/Q5_K.

/// Read a little-endian f16 at `b[0..2]` as f32.
#[inline]
pub(crate) fn f16_at(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

/// Layout of a 32-element block format: bytes, whether a min `m` follows `d`, whether a
/// 32-bit high-bit mask follows, and where the packed codes start.
#[derive(Clone, Copy)]
pub(crate) struct B32 {
    pub bytes: usize,
    pub has_m: bool,
    pub has_qh: bool,
    /// Offset of the u32 high-bit mask (Q5 formats).
    pub qh: usize,
    /// Offset of the codes.
    pub qs: usize,
    /// Implicit zero point of the `_0` formats (code − zero), 0 for `_1` formats.
    pub zero: f32,
}

/// Q4_0: d, qs[16].
pub(crate) const Q4_0: B32 = B32 {
    bytes: 18,
    has_m: false,
    has_qh: false,
    qh: 0,
    qs: 2,
    zero: 8.0,
};
/// Q4_1: d, m, qs[16].
pub(crate) const Q4_1: B32 = B32 {
    bytes: 20,
    has_m: true,
    has_qh: false,
    qh: 0,
    qs: 4,
    zero: 0.0,
};
/// Q5_0: d, qh, qs[16].
pub(crate) const Q5_0: B32 = B32 {
    bytes: 22,
    has_m: false,
    has_qh: true,
    qh: 2,
    qs: 6,
    zero: 16.0,
};
/// Q5_1: d, m, qh, qs[16].
pub(crate) const Q5_1: B32 = B32 {
    bytes: 24,
    has_m: true,
    has_qh: true,
    qh: 4,
    qs: 8,
    zero: 0.0,
};

/// The layout for a const-generic format id (0 Q4_0, 1 Q4_1, 2 Q5_0, 3 Q5_1).
pub(crate) const fn b32(id: u8) -> B32 {
    match id {
        0 => Q4_0,
        1 => Q4_1,
        2 => Q5_0,
        _ => Q5_1,
    }
}

/// Unpack the 12 scale bytes of a Q4_K/Q5_K block into 8 six-bit scales and 8 mins.
#[inline]
pub(crate) fn k_scales(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
    }
    for j in 4..8 {
        sc[j] = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    (sc, mn)
}

/// Q4_K/Q5_K/Q6_K block sizes and field offsets.
pub(crate) mod kq {
    pub const Q4K_BYTES: usize = 144;
    pub const Q5K_BYTES: usize = 176;
    /// Q4_K/Q5_K: d at 0, dmin at 2, scales at 4..16.
    pub const SCALES: usize = 4;
    /// Q5_K: qh[32] at 16, qs[128] at 48. Q4_K: qs[128] at 16.
    pub const Q5K_QH: usize = 16;
    pub const Q4K_QS: usize = 16;
    pub const Q5K_QS: usize = 48;
    pub const Q6K_BYTES: usize = 210;
    /// Q6_K: ql[128] at 0, qh[64] at 128, scales[16] at 192, d at 208.
    pub const Q6K_QH: usize = 128;
    pub const Q6K_SC: usize = 192;
    pub const Q6K_D: usize = 208;
}
