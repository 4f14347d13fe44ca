//! AVX2 tiles for Q4_K and Q5_K against Q8 256-block activations.

use std::arch::x86_64::*;

use super::util::{f16_at, hsum, prefetch_rows_ahead};
use crate::matmul::blocks::{k_scales, kq};
use crate::matmul::kernel::Ctx;

/// Q4_K (`Q5 = false`) / Q5_K (`Q5 = true`) tile.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; the CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q45k<const Q5: bool, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let (bytes, qs_off) = if Q5 {
        (kq::Q5K_BYTES, kq::Q5K_QS)
    } else {
        (kq::Q4K_BYTES, kq::Q4K_QS)
    };
    let nb = ctx.cols / 256;
    let rb = ctx.row_bytes;
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.qs.len() >= (tok + T) * ctx.cols && rb == nb * bytes);
    let w = ctx.w[row * rb..].as_ptr();
    let (qa, da, bsa) = (
        ctx.acts.qs.as_ptr(),
        ctx.acts.d.as_ptr(),
        ctx.acts.bsums.as_ptr(),
    );
    let m4 = _mm256_set1_epi8(0x0F);
    let bit4 = _mm256_set1_epi8(0x10);
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut macc = [[0f32; T]; R];
    for b in 0..nb {
        let mut pair_sums = [_mm_setzero_si128(); T];
        let mut dv = [0f32; T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            // SAFETY: block i of the activations (and its 16 group sums) exists.
            let bs = unsafe { _mm256_loadu_si256(bsa.add(i * 16).cast()) };
            pair_sums[t] = _mm_hadd_epi16(
                _mm256_castsi256_si128(bs),
                _mm256_extracti128_si256::<1>(bs),
            );
            dv[t] = unsafe { *da.add(i) };
        }
        for r in 0..R {
            // SAFETY: rows row..row+R are inside the weight buffer; the block is whole.
            let blk = unsafe { w.add(r * rb + b * bytes) };
            let sb = unsafe { std::slice::from_raw_parts(blk.add(kq::SCALES), 12) };
            let (sc, mn) = k_scales(sb);
            let mut qh = if Q5 {
                unsafe { _mm256_loadu_si256(blk.add(kq::Q5K_QH).cast()) }
            } else {
                _mm256_setzero_si256()
            };
            let mut isum = [_mm256_setzero_si256(); T];
            for g in 0..4 {
                let q = unsafe { _mm256_loadu_si256(blk.add(qs_off + 32 * g).cast()) };
                if T == 1 {
                    prefetch_rows_ahead(unsafe { blk.add(qs_off + 32 * g) }, rb);
                }
                let mut lo = _mm256_and_si256(q, m4);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                if Q5 {
                    // qh is pre-shifted by 2g: bit 0 → sub-block 2g, bit 1 → 2g+1.
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(qh), bit4));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(qh), bit4));
                    qh = _mm256_srli_epi16::<2>(qh);
                }
                let sc_lo = _mm256_set1_epi16(sc[2 * g] as i16);
                let sc_hi = _mm256_set1_epi16(sc[2 * g + 1] as i16);
                for t in 0..T {
                    let base = ((tok + t) * nb + b) * 256 + 64 * g;
                    // SAFETY: 64 activation codes of this sub-block pair exist.
                    let (a_lo, a_hi) = unsafe {
                        (
                            _mm256_loadu_si256(qa.add(base).cast()),
                            _mm256_loadu_si256(qa.add(base + 32).cast()),
                        )
                    };
                    let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a_lo), sc_lo);
                    let p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a_hi), sc_hi);
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(p_lo, p_hi));
                }
            }
            let d = unsafe { f16_at(blk) };
            let dmin = unsafe { f16_at(blk.add(2)) };
            let mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(mn.as_ptr().cast()));
            for t in 0..T {
                let p = _mm256_cvtepi32_ps(isum[t]);
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(d * dv[t]), acc[r][t]);
                let m = _mm_madd_epi16(mins, pair_sums[t]);
                let m = _mm_add_epi32(m, _mm_unpackhi_epi64(m, m));
                let m = _mm_cvtsi128_si32(_mm_add_epi32(m, _mm_shuffle_epi32::<1>(m)));
                macc[r][t] -= dmin * dv[t] * m as f32;
            }
        }
    }
    for r in 0..R {
        for t in 0..T {
            // SAFETY: the caller owns this tile.
            unsafe { ctx.store(tok + t, row + r, hsum(acc[r][t]) + macc[r][t]) };
        }
    }
}
