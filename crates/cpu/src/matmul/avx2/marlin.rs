//! AVX2 block decoders of the metal-marlin formats: 4-bit codes go through a 16-entry table
//! held in two registers (`vpermps` on the low three bits, blended on bit 3), 2-bit codes
//! through a 4-entry one; a u32 code word is broadcast and shifted per lane, which matches
//! the layout (word w, field k = element 8w+k or 16w+k).

use std::arch::x86_64::*;

/// Decode `2 · src.len()` 4-bit codes (`src.len()` a multiple of 4) through `lut` into `y`.
///
/// # Safety
/// AVX2 must be available; `y.len() ≥ 2 · src.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn nibbles(src: &[u8], lut: &[f32; 16], y: &mut [f32]) {
    // SAFETY: lut has 16 floats; loads are unaligned.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_ps(lut.as_ptr()),
            _mm256_loadu_ps(lut.as_ptr().add(8)),
        )
    };
    let shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    let mask = _mm256_set1_epi32(15);
    for (w, out) in src.chunks_exact(4).zip(y.chunks_exact_mut(8)) {
        let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let idx = _mm256_and_si256(
            _mm256_srlv_epi32(_mm256_set1_epi32(word as i32), shifts),
            mask,
        );
        let a = _mm256_permutevar8x32_ps(lo, idx);
        let b = _mm256_permutevar8x32_ps(hi, idx);
        let v = _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx)));
        // SAFETY: out has 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
    }
}

/// Decode `4 · src.len()` 2-bit codes (`src.len()` a multiple of 4) through `lut[..4]`.
///
/// # Safety
/// AVX2 must be available; `y.len() ≥ 4 · src.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn crumbs(src: &[u8], lut: &[f32; 16], y: &mut [f32]) {
    // SAFETY: lut has 16 floats.
    let lo = unsafe { _mm256_loadu_ps(lut.as_ptr()) };
    let s0 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let s1 = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
    let mask = _mm256_set1_epi32(3);
    for (w, out) in src.chunks_exact(4).zip(y.chunks_exact_mut(16)) {
        let word = _mm256_set1_epi32(u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as i32);
        let i0 = _mm256_and_si256(_mm256_srlv_epi32(word, s0), mask);
        let i1 = _mm256_and_si256(_mm256_srlv_epi32(word, s1), mask);
        // SAFETY: out has 16 floats.
        unsafe {
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_permutevar8x32_ps(lo, i0));
            _mm256_storeu_ps(out.as_mut_ptr().add(8), _mm256_permutevar8x32_ps(lo, i1));
        }
    }
}

/// `y = s · (c − z)` for byte codes `src` (`src.len()` a multiple of 8).
///
/// # Safety
/// AVX2 must be available; `y.len() ≥ src.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn bytes_affine(src: &[u8], s: f32, z: f32, y: &mut [f32]) {
    let (vs, vz) = (_mm256_set1_ps(s), _mm256_set1_ps(z));
    for (c, out) in src.chunks_exact(8).zip(y.chunks_exact_mut(8)) {
        // SAFETY: c has 8 bytes, out 8 floats.
        unsafe {
            let b = _mm_loadl_epi64(c.as_ptr().cast());
            let f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_mul_ps(vs, _mm256_sub_ps(f, vz)));
        }
    }
}

/// Decode 3-bit codes: `lo` holds the low two bits (four per byte), `hi` the high bit (eight
/// per byte) of `8 · hi.len()` elements (`hi.len()` a multiple of 4), through `lut[..8]`.
///
/// # Safety
/// AVX2 must be available; `lo.len() ≥ 2 · hi.len()`, `y.len() ≥ 8 · hi.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn tribits(lo: &[u8], hi: &[u8], lut: &[f32; 16], y: &mut [f32]) {
    // SAFETY: lut has 16 floats.
    let t = unsafe { _mm256_loadu_ps(lut.as_ptr()) };
    let s2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let s1 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let (m3, m1) = (_mm256_set1_epi32(3), _mm256_set1_epi32(1));
    for ((l, h), out) in lo
        .chunks_exact(8)
        .zip(hi.chunks_exact(4))
        .zip(y.chunks_exact_mut(32))
    {
        let hw = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        for j in 0..4 {
            let lw = u32::from_le_bytes([
                l[4 * (j / 2)],
                l[4 * (j / 2) + 1],
                l[4 * (j / 2) + 2],
                l[4 * (j / 2) + 3],
            ]);
            let low = _mm256_and_si256(
                _mm256_srlv_epi32(_mm256_set1_epi32((lw >> (16 * (j % 2))) as i32), s2),
                m3,
            );
            let high = _mm256_and_si256(
                _mm256_srlv_epi32(_mm256_set1_epi32((hw >> (8 * j)) as i32), s1),
                m1,
            );
            let idx = _mm256_or_si256(low, _mm256_slli_epi32::<2>(high));
            // SAFETY: out has 32 floats.
            unsafe {
                _mm256_storeu_ps(
                    out.as_mut_ptr().add(8 * j),
                    _mm256_permutevar8x32_ps(t, idx),
                )
            };
        }
    }
}

/// `y = table[c] · s` for byte codes `src` (`src.len()` a multiple of 8), by gather.
///
/// # Safety
/// AVX2 must be available; `table` has 256 entries; `y.len() ≥ src.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn bytes_table(src: &[u8], table: &[f32; 256], s: f32, y: &mut [f32]) {
    let vs = _mm256_set1_ps(s);
    for (c, out) in src.chunks_exact(8).zip(y.chunks_exact_mut(8)) {
        // SAFETY: c has 8 bytes, out 8 floats; indices are < 256.
        unsafe {
            let idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(c.as_ptr().cast()));
            let v = _mm256_i32gather_ps::<4>(table.as_ptr(), idx);
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_mul_ps(v, vs));
        }
    }
}
