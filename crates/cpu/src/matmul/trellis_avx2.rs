//! AVX2 trellis strip: eight states per u64 window (two variable 64-bit shifts, a blend and
//! a permute), eight codebook values per vector, FMA against the prepared activations.
//! Bit-exact values with the scalar decode (same integer ops; MUL1 as sub then mul).

use std::arch::x86_64::*;

use marlin_core::formats::trellis_code::{
    HALVES_MASK, HALVES_XOR, INST3_ADD, INST3_MUL, MCG_MUL, MUL1_MUL, MUL1_SCALE, TILE,
};

use super::trellis_decode::{fill_be, window, Job, BE, INST3, MCG, TOKEN_CHUNK};

/// f32 of the two f16 halves of each lane (normal f16s, see the scalar `f16_bits`), summed.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn f16_pair(h: __m256i) -> __m256 {
    let m = _mm256_set1_epi32(0x7FFF);
    let bias = _mm256_set1_epi32(0x3800_0000);
    let sign = _mm256_set1_epi32(i32::MIN);
    let hi_mag = _mm256_slli_epi32::<13>(_mm256_and_si256(_mm256_srli_epi32::<16>(h), m));
    let hi = _mm256_or_si256(_mm256_and_si256(h, sign), _mm256_add_epi32(hi_mag, bias));
    let lo_mag = _mm256_slli_epi32::<13>(_mm256_and_si256(h, m));
    let lo = _mm256_or_si256(
        _mm256_and_si256(_mm256_slli_epi32::<16>(h), sign),
        _mm256_add_epi32(lo_mag, bias),
    );
    _mm256_add_ps(_mm256_castsi256_ps(hi), _mm256_castsi256_ps(lo))
}

/// Codebook `CB` values of eight states.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn values8<const CB: u8>(s: __m256i) -> __m256 {
    let halves = |p: __m256i| {
        let h = _mm256_xor_si256(
            _mm256_and_si256(p, _mm256_set1_epi32(HALVES_MASK as i32)),
            _mm256_set1_epi32(HALVES_XOR as i32),
        );
        f16_pair(h)
    };
    match CB {
        INST3 => halves(_mm256_add_epi32(
            _mm256_mullo_epi32(s, _mm256_set1_epi32(INST3_MUL as i32)),
            _mm256_set1_epi32(INST3_ADD as i32),
        )),
        MCG => halves(_mm256_mullo_epi32(s, _mm256_set1_epi32(MCG_MUL as i32))),
        _ => {
            let p = _mm256_mullo_epi32(s, _mm256_set1_epi32(MUL1_MUL as i32));
            let bytes = _mm256_set1_epi32(0x00FF_00FF);
            let v = _mm256_add_epi32(
                _mm256_and_si256(p, bytes),
                _mm256_and_si256(_mm256_srli_epi32::<8>(p), bytes),
            );
            let sum = _mm256_add_epi32(
                _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)),
                _mm256_srli_epi32::<16>(v),
            );
            let f = _mm256_sub_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(510.0));
            _mm256_mul_ps(f, _mm256_set1_ps(MUL1_SCALE))
        }
    }
}

/// The eight states of window `w` (positions 8j..8j+8) in lane order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn states8<const K: usize>(w: u64) -> __m256i {
    let k = K as i64;
    let wv = _mm256_set1_epi64x(w as i64);
    let lo = _mm256_srlv_epi64(
        wv,
        _mm256_setr_epi64x(48 - k, 48 - 2 * k, 48 - 3 * k, 48 - 4 * k),
    );
    let hi = _mm256_srlv_epi64(
        wv,
        _mm256_setr_epi64x(48 - 5 * k, 48 - 6 * k, 48 - 7 * k, 48 - 8 * k),
    );
    // [s0, s4, s1, s5, s2, s6, s3, s7] in the low 32 bits of each pair, then in order.
    let mixed = _mm256_blend_epi32::<0b1010_1010>(lo, _mm256_slli_epi64::<32>(hi));
    let ord = _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    _mm256_and_si256(ord, _mm256_set1_epi32(0xFFFF))
}

/// Horizontal sum of eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Rows `16·tn..16·tn+16` of `Q · xs` for every token into `out` (`n_tokens × 16`).
///
/// # Safety
/// The CPU has AVX2 and FMA; `job` was validated (tiles and activations in bounds).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn strip<const K: usize, const CB: u8>(job: &Job, tn: usize, out: &mut [f32]) {
    let mut be = [0u8; BE];
    let mut q = [_mm256_setzero_ps(); TILE / 8];
    let mut acc = [[_mm256_setzero_ps(); 16]; TOKEN_CHUNK];
    let mut t0 = 0;
    while t0 < job.n_tokens {
        let nt = (job.n_tokens - t0).min(TOKEN_CHUNK);
        for a in &mut acc[..nt] {
            *a = [_mm256_setzero_ps(); 16];
        }
        for tk in 0..job.tiles_k {
            let at = (tn * job.tiles_k + tk) * job.tile_bytes;
            fill_be::<K>(&job.bytes[at..at + job.tile_bytes], &mut be);
            for (j, v) in q.iter_mut().enumerate() {
                *v = values8::<CB>(states8::<K>(window::<K>(&be, j)));
            }
            for (t, a) in acc[..nt].iter_mut().enumerate() {
                let xa = (t0 + t) * job.k + tk * 16;
                let x = &job.xs[xa..xa + 16];
                // SAFETY: `x` holds 16 values.
                let (xl, xh) = unsafe {
                    (
                        _mm256_loadu_ps(x.as_ptr()),
                        _mm256_loadu_ps(x.as_ptr().add(8)),
                    )
                };
                for (r, ar) in a.iter_mut().enumerate() {
                    *ar = _mm256_fmadd_ps(q[2 * r], xl, _mm256_fmadd_ps(q[2 * r + 1], xh, *ar));
                }
            }
        }
        for (t, a) in acc[..nt].iter().enumerate() {
            let o = &mut out[(t0 + t) * 16..(t0 + t + 1) * 16];
            for (y, v) in o.iter_mut().zip(a) {
                *y = hsum(*v);
            }
        }
        t0 += nt;
    }
}
