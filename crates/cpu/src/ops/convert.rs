//! Element-type conversions: F16C where the CPU has it, else plain loops that vectorize.

use half::f16;

/// Exact f16 → f32 (subnormals, infinities and NaN payloads included): the f16 exponent and
/// mantissa are placed in an f32 and rescaled by one multiply by 2^112 (F. Giesen's method),
/// branch-free so the loop vectorizes. Converts `min(src.len(), dst.len())` values.
#[inline]
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("f16c") && is_x86_feature_detected!("avx") {
        // SAFETY: the features `f16_to_f32_f16c` is compiled for were just detected.
        unsafe { f16_to_f32_f16c(src, dst) };
        return;
    }
    f16_to_f32_portable(src, dst);
}

/// The F16C path of [`f16_to_f32`]: eight values per `vcvtph2ps`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
fn f16_to_f32_f16c(src: &[f16], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 ≤ n` for both the 16-byte load and the 32-byte store.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
        i += 8;
    }
    f16_to_f32_portable(&src[i..n], &mut dst[i..n]);
}

#[inline]
fn f16_to_f32_portable(src: &[f16], dst: &mut [f32]) {
    const MAGIC: f32 = f32::from_bits((254 - 15) << 23);
    const WAS_INF_NAN: f32 = f32::from_bits((127 + 16) << 23);
    for (d, s) in dst.iter_mut().zip(src) {
        let h = u32::from(s.to_bits());
        let o = f32::from_bits((h & 0x7fff) << 13) * MAGIC;
        let inf_nan = if o >= WAS_INF_NAN { 255 << 23 } else { 0 };
        *d = f32::from_bits(o.to_bits() | inf_nan | ((h & 0x8000) << 16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_is_exact_for_every_value() {
        let src: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let mut dst = vec![0.0f32; src.len()];
        f16_to_f32(&src, &mut dst);
        let mut portable = vec![0.0f32; src.len()];
        f16_to_f32_portable(&src, &mut portable);
        for ((s, d), p) in src.iter().zip(&dst).zip(&portable) {
            let want = s.to_f32();
            if want.is_nan() {
                assert!(d.is_nan() && p.is_nan(), "{:#06x}", s.to_bits());
            } else {
                assert_eq!(d.to_bits(), want.to_bits(), "{:#06x}", s.to_bits());
                assert_eq!(p.to_bits(), want.to_bits(), "{:#06x}", s.to_bits());
            }
        }
    }
}
