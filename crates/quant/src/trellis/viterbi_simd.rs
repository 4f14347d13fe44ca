//! x86-64 builds of the Viterbi update step `C[s] = (w − f(s))² + M[s >> K]` (tagged with
//! the state's top K bits): one vector of 8 (AVX2) or 16 (AVX-512) states at a time, `M`
//! broadcast per group in registers (the compilers' own vectorization of this loop used
//! gathers/scatters).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::viterbi::STATES;

/// AVX2 + FMA update. `min` holds `STATES >> k` values.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `cost` and `table` hold `STATES` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn update_avx2(cost: &mut [f32], table: &[f32], min: &[f32], w: f32, k: u32) {
    let (cost, table) = (&mut cost[..STATES], &table[..STATES]);
    let min = &min[..STATES >> k];
    let wv = _mm256_set1_ps(w);
    let clear = _mm256_set1_epi32(!((1i32 << k) - 1));
    let mut s = 0;
    while s < STATES {
        let g = s >> k;
        let m = if k == 2 {
            _mm256_insertf128_ps::<1>(
                _mm256_castps128_ps256(_mm_set1_ps(min[g])),
                _mm_set1_ps(min[g + 1]),
            )
        } else {
            _mm256_set1_ps(min[g])
        };
        let tag = _mm256_set1_epi32((s >> (16 - k)) as i32);
        // SAFETY: s + 8 ≤ STATES = the length of both slices.
        let f = unsafe { _mm256_loadu_ps(table.as_ptr().add(s)) };
        let d = _mm256_sub_ps(wv, f);
        let v = _mm256_castps_si256(_mm256_fmadd_ps(d, d, m));
        let v = _mm256_or_si256(_mm256_and_si256(v, clear), tag);
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(cost.as_mut_ptr().add(s), _mm256_castsi256_ps(v)) };
        s += 8;
    }
}

/// AVX-512F update. `min` holds `STATES >> k` values plus 4 of padding.
///
/// # Safety
/// The CPU must support AVX-512F; `cost` and `table` hold `STATES` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn update_avx512(cost: &mut [f32], table: &[f32], min: &[f32], w: f32, k: u32) {
    let (cost, table) = (&mut cost[..STATES], &table[..STATES]);
    let min = &min[..(STATES >> k) + 4];
    let wv = _mm512_set1_ps(w);
    let clear = _mm512_set1_epi32(!((1i32 << k) - 1));
    // Lane i takes group g0 + (i >> k) of the loaded window.
    let idx = _mm512_set_epi32(
        15 >> k,
        14 >> k,
        13 >> k,
        12 >> k,
        11 >> k,
        10 >> k,
        9 >> k,
        8 >> k,
        7 >> k,
        6 >> k,
        5 >> k,
        4 >> k,
        3 >> k,
        2 >> k,
        1 >> k,
        0,
    );
    let mut s = 0;
    while s < STATES {
        let g = s >> k;
        // SAFETY: g + 4 ≤ (STATES >> k) + 4 = min's checked length.
        let window = unsafe { _mm_loadu_ps(min.as_ptr().add(g)) };
        let m = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(window));
        let tag = _mm512_set1_epi32((s >> (16 - k)) as i32);
        // SAFETY: s + 16 ≤ STATES = the length of both slices.
        let f = unsafe { _mm512_loadu_ps(table.as_ptr().add(s)) };
        let d = _mm512_sub_ps(wv, f);
        let v = _mm512_castps_si512(_mm512_fmadd_ps(d, d, m));
        let v = _mm512_or_si512(_mm512_and_si512(v, clear), tag);
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(cost.as_mut_ptr().add(s), _mm512_castsi512_ps(v)) };
        s += 16;
    }
}
