//! AVX2 activation quantization (see [`crate::quant_act`]): f32 → int8 blocks.

use std::arch::x86_64::*;

use super::util::hsum_i32;

/// Max |x| over 8·N floats at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn amax<const N: usize>(p: *const f32) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for k in 0..N {
        // SAFETY: the caller guarantees 8·N floats.
        let v = unsafe { _mm256_loadu_ps(p.add(8 * k)) };
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v));
    }
    let s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
}

/// Quantize 32 floats at `p` with inverse scale `id` into `q`; returns the four i32 vectors
/// (elements 0–7, 8–15, 16–23, 24–31) for sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quant32(p: *const f32, id: f32, q: *mut i8) -> [__m256i; 4] {
    let idv = _mm256_set1_ps(id);
    let mut v = [_mm256_setzero_si256(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        // SAFETY: 32 floats at p (caller).
        let x = unsafe { _mm256_loadu_ps(p.add(8 * k)) };
        let x = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, idv),
        );
        *v = _mm256_cvtps_epi32(x);
    }
    let p16 = _mm256_packs_epi16(
        _mm256_packs_epi32(v[0], v[1]),
        _mm256_packs_epi32(v[2], v[3]),
    );
    let ordered = _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: 32 writable bytes at q (caller).
    unsafe { _mm256_storeu_si256(q.cast(), ordered) };
    v
}

fn inv(d: f32) -> f32 {
    if d > 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// AVX2 version of [`crate::quant_act::quantize_b32`].
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_b32(x: &[f32], qs: &mut [i8], ds: &mut [[f32; 2]]) {
    let nb = (x.len() / 32).min(qs.len() / 32).min(ds.len());
    for b in 0..nb {
        // SAFETY: block b lies inside x and qs (nb bounds both).
        unsafe {
            let p = x.as_ptr().add(32 * b);
            let scale = amax::<4>(p) / 127.0;
            let v = quant32(p, inv(scale), qs.as_mut_ptr().add(32 * b));
            let sum = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
            ds[b] = [scale, scale * hsum_i32(sum) as f32];
        }
    }
}

/// AVX2 version of [`crate::quant_act::quantize_b256`].
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_b256(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
    let nb = (x.len() / 256)
        .min(qs.len() / 256)
        .min(d.len())
        .min(bsums.len() / 16);
    for b in 0..nb {
        // SAFETY: block b lies inside x, qs and bsums (nb bounds all of them).
        unsafe {
            let p = x.as_ptr().add(256 * b);
            let scale = amax::<32>(p) / 127.0;
            let id = inv(scale);
            for c in 0..8 {
                let v = quant32(p.add(32 * c), id, qs.as_mut_ptr().add(256 * b + 32 * c));
                bsums[16 * b + 2 * c] = hsum_i32(_mm256_add_epi32(v[0], v[1])) as i16;
                bsums[16 * b + 2 * c + 1] = hsum_i32(_mm256_add_epi32(v[2], v[3])) as i16;
            }
            d[b] = scale;
        }
    }
}
