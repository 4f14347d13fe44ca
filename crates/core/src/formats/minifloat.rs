//! FP8 E4M3 and FP4 E2M1 element codecs: exact decoding and round-to-nearest-even encoding
//! with saturation (OCP OFP8 / MX rules, digest §3.1 and §3.4).

use super::fp::E2M1_TABLE;

/// Largest finite E4M3 value (code 0x7E).
pub const E4M3_MAX: f32 = 448.0;

/// E4M3 ("fn") code → value: bias 7, subnormals m·2^−9, 0x7F/0xFF are NaN, no infinities.
#[inline]
pub fn e4m3_to_f32(code: u8) -> f32 {
    let sign = if code & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = i32::from((code >> 3) & 15);
    let m = f32::from(code & 7);
    if e == 15 && code & 7 == 7 {
        return f32::NAN;
    }
    let mag = if e == 0 {
        m * 2f32.powi(-9)
    } else {
        (1.0 + m / 8.0) * 2f32.powi(e - 7)
    };
    sign * mag
}

/// Nearest code among the increasing magnitudes `table[0..n]` for `a ≥ 0`; ties go to the
/// even code (= even mantissa, round-to-nearest-even); above the last entry saturates.
#[inline]
fn nearest_magnitude(a: f32, n: usize, table: impl Fn(usize) -> f32) -> usize {
    // Binary search for the first entry ≥ a.
    let (mut lo, mut hi) = (0usize, n - 1);
    if a >= table(hi) {
        return hi;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if table(mid) >= a {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if lo == 0 {
        return 0;
    }
    let (below, above) = (table(lo - 1), table(lo));
    let (db, da) = (a - below, above - a);
    if db < da || (db == da && (lo - 1).is_multiple_of(2)) {
        lo - 1
    } else {
        lo
    }
}

/// f32 → E4M3 code, round to nearest even, saturating to ±448; NaN → 0x7F.
#[inline]
pub fn f32_to_e4m3(x: f32) -> u8 {
    if x.is_nan() {
        return 0x7f;
    }
    // Codes 0..=126 are the non-negative finite values in increasing order.
    let c = nearest_magnitude(x.abs(), 127, |i| e4m3_to_f32(i as u8)) as u8;
    if x.is_sign_negative() && c != 0 {
        c | 0x80
    } else {
        c
    }
}

/// f32 → E2M1 code, round to nearest even, saturating to ±6; NaN → 0.
#[inline]
pub fn f32_to_e2m1(x: f32) -> u8 {
    if x.is_nan() {
        return 0;
    }
    let c = nearest_magnitude(x.abs(), 8, |i| E2M1_TABLE[i]) as u8;
    if x.is_sign_negative() && c != 0 {
        c | 8
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2m1_table_is_pinned() {
        // Independently derived from the bit layout: s·2^(e−1)·(1 + m/2), e = 0 → m·0.5.
        for c in 0u8..16 {
            let (s, e, m) = (c >> 3, (c >> 1) & 3, c & 1);
            let mag = if e == 0 {
                f32::from(m) * 0.5
            } else {
                2f32.powi(i32::from(e) - 1) * (1.0 + f32::from(m) / 2.0)
            };
            let v = if s == 1 { -mag } else { mag };
            assert_eq!(
                E2M1_TABLE[usize::from(c)].to_bits(),
                v.to_bits(),
                "code {c}"
            );
        }
    }

    #[test]
    fn e2m1_rounds_half_to_even() {
        let cases = [
            (0.25, 0.0),
            (0.75, 1.0),
            (1.25, 1.0),
            (1.75, 2.0),
            (2.5, 2.0),
            (3.5, 4.0),
            (5.0, 4.0),
            (5.1, 6.0),
            (100.0, 6.0),
            (-0.3, -0.5),
            (-2.6, -3.0),
        ];
        for (x, want) in cases {
            assert_eq!(E2M1_TABLE[usize::from(f32_to_e2m1(x))], want, "{x}");
        }
    }

    #[test]
    fn e4m3_known_codes() {
        assert_eq!(e4m3_to_f32(0x7e), 448.0);
        assert_eq!(e4m3_to_f32(0x38), 1.0);
        assert_eq!(e4m3_to_f32(0x01), 2f32.powi(-9));
        assert_eq!(e4m3_to_f32(0x08), 2f32.powi(-6));
        assert_eq!(e4m3_to_f32(0xc0), -2.0);
        assert!(e4m3_to_f32(0x7f).is_nan());
        assert_eq!(f32_to_e4m3(1000.0), 0x7e);
        assert_eq!(f32_to_e4m3(-1000.0), 0xfe);
        assert_eq!(f32_to_e4m3(1.0), 0x38);
        // 1.0625 is the midpoint of 1.0 (m=0) and 1.125 (m=1): ties to even → 1.0.
        assert_eq!(f32_to_e4m3(1.0625), 0x38);
        assert_eq!(f32_to_e4m3(1.1875), 0x3a);
        assert_eq!(f32_to_e4m3(0.0009), 0x00);
        assert_eq!(f32_to_e4m3(0.001), 0x01);
        for c in 0u8..=0x7e {
            assert_eq!(f32_to_e4m3(e4m3_to_f32(c)), c);
            assert_eq!(
                f32_to_e4m3(-e4m3_to_f32(c)),
                if c == 0 { 0 } else { c | 0x80 }
            );
        }
    }
}
