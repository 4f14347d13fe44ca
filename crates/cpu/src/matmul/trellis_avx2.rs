//! AVX2 trellis strip: eight states per u64 window (two variable 64-bit shifts and a blend),
//! eight codebook values per vector (F16C for the f16 halves), FMA against the prepared
//! activations. Lanes hold the group's positions in the order [`lane_order`]; the caller
//! permutes every 8 activations the same way, so no shuffle runs per weight. Values are
//! bit-exact with the scalar decode (same integer ops; MUL1 as sub then mul).

use std::arch::x86_64::*;

use marlin_core::formats::trellis_code::{
    HALVES_MASK, HALVES_XOR, INST3_ADD, INST3_MUL, MCG_MUL, MUL1_MUL, MUL1_SCALE, TILE,
};

use super::trellis_decode::{fill_be, window, Job, BE, INST3, MCG, MUL1, TOKEN_CHUNK};

/// Sum of the two f16 halves of each lane, by F16C; lanes come out in the order
/// `[0, 1, 4, 5, 2, 3, 6, 7]` (`hadd` of the low and high 128-bit halves).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_pair(h: __m256i) -> __m256 {
    let a = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    let b = _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(h));
    _mm256_hadd_ps(a, b)
}

/// Codebook `CB` values of eight states.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
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

/// Positions (within a group of 8) held by the value lanes of codebook `CB`: states come
/// as `[0, 4, 1, 5, 2, 6, 3, 7]`, and 3INST/MCG's `hadd` reorders lanes once more.
pub(super) fn lane_order(cb: u8) -> [usize; 8] {
    if cb == MUL1 {
        [0, 4, 1, 5, 2, 6, 3, 7]
    } else {
        [0, 4, 2, 6, 1, 5, 3, 7]
    }
}

/// The eight states of window `w` (positions 8j..8j+8), lanes `[0, 4, 1, 5, 2, 6, 3, 7]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
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
    // [s0, s4, s1, s5, s2, s6, s3, s7]: lo's lanes in the low halves, hi's in the high.
    let mixed = _mm256_blend_epi32::<0b1010_1010>(lo, _mm256_slli_epi64::<32>(hi));
    _mm256_and_si256(mixed, _mm256_set1_epi32(0xFFFF))
}

/// Horizontal sum of eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Rows `16·tn..16·tn+16` of `Q · xs` for every token into `out` (`n_tokens × 16`).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `job` was validated (tiles and activations in bounds)
/// and its activations are permuted by [`lane_order`] within every 8.
#[target_feature(enable = "avx2,fma,f16c")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use marlin_core::formats::trellis::decode_value;
    use marlin_core::Codebook;

    #[target_feature(enable = "avx2,fma,f16c")]
    fn check_values<const CB: u8>(cb: Codebook) {
        // Value lane j holds input lane HADD[j] (3INST/MCG) or lane j (MUL1).
        const HADD: [usize; 8] = [0, 1, 4, 5, 2, 3, 6, 7];
        for base in (0..=u16::MAX as i32).step_by(8) {
            let lanes: [i32; 8] = std::array::from_fn(|i| base + i as i32);
            let s = _mm256_setr_epi32(
                lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], lanes[5], lanes[6], lanes[7],
            );
            let mut got = [0f32; 8];
            // SAFETY: `got` holds 8 floats.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), values8::<CB>(s)) };
            for (j, v) in got.iter().enumerate() {
                let lane = if CB == MUL1 { j } else { HADD[j] };
                let want = decode_value(cb, lanes[lane] as u16);
                assert_eq!(v.to_bits(), want.to_bits(), "{cb} state {}", lanes[lane]);
            }
        }
    }

    #[test]
    fn avx2_values_are_bit_exact_for_every_state() {
        if !crate::matmul::Isa::Avx2.is_available() {
            return;
        }
        // SAFETY: AVX2, FMA and F16C are present (checked above).
        unsafe {
            check_values::<INST3>(Codebook::Inst3);
            check_values::<MCG>(Codebook::Mcg);
            check_values::<MUL1>(Codebook::Mul1);
        }
    }
}
