//! AVX2 tile for Q6_K against Q8 256-block activations.

use std::arch::x86_64::*;

use super::util::{f16_at, hsum, prefetch_rows_ahead};
use crate::matmul::blocks::kq;
use crate::matmul::kernel::Ctx;

/// Q6_K tile: unsigned 6-bit codes × int8, the −32 offset folded in through group sums.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; the CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6k<const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    let nb = ctx.cols / 256;
    let rb = ctx.row_bytes;
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.qs.len() >= (tok + T) * ctx.cols && rb == nb * kq::Q6K_BYTES);
    let w = ctx.w[row * rb..].as_ptr();
    let (qa, da, bsa) = (
        ctx.acts.qs.as_ptr(),
        ctx.acts.d.as_ptr(),
        ctx.acts.bsums.as_ptr(),
    );
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x30);
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    for b in 0..nb {
        let mut bsums = [_mm256_setzero_si256(); T];
        let mut dv = [0f32; T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            // SAFETY: block i of the activations (and its 16 group sums) exists.
            unsafe {
                bsums[t] = _mm256_loadu_si256(bsa.add(i * 16).cast());
                dv[t] = *da.add(i);
            }
        }
        for r in 0..R {
            // SAFETY: rows row..row+R are inside the weight buffer; the block is whole.
            let blk = unsafe { w.add(r * rb + b * kq::Q6K_BYTES) };
            let sc8 = unsafe { _mm_loadu_si128(blk.add(kq::Q6K_SC).cast()) };
            let sc16 = _mm256_cvtepi8_epi16(sc8);
            // Start from −32 · Σ_g scale_g · bsum_g (the code offset).
            let mut isum = [_mm256_setzero_si256(); T];
            for t in 0..T {
                let corr = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, bsums[t]));
                isum[t] = _mm256_sub_epi32(isum[t], corr);
            }
            if T == 1 {
                for off in (0..kq::Q6K_BYTES).step_by(64) {
                    prefetch_rows_ahead(unsafe { blk.add(off) }, rb);
                }
            }
            for h in 0..2 {
                let (ql0, ql1, qh) = unsafe {
                    (
                        _mm256_loadu_si256(blk.add(64 * h).cast()),
                        _mm256_loadu_si256(blk.add(64 * h + 32).cast()),
                        _mm256_loadu_si256(blk.add(kq::Q6K_QH + 32 * h).cast()),
                    )
                };
                let q = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, m4),
                        _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m2),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m2),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                        _mm256_and_si256(qh, m2),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                        _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m2),
                    ),
                ];
                for (k, &qk) in q.iter().enumerate() {
                    let g = 8 * h + 2 * k;
                    let (s0, s1) = unsafe {
                        (
                            *blk.add(kq::Q6K_SC + g) as i8,
                            *blk.add(kq::Q6K_SC + g + 1) as i8,
                        )
                    };
                    let scv =
                        _mm256_set_m128i(_mm_set1_epi16(s1 as i16), _mm_set1_epi16(s0 as i16));
                    for t in 0..T {
                        let base = ((tok + t) * nb + b) * 256 + 128 * h + 32 * k;
                        // SAFETY: 32 activation codes of this chunk exist.
                        let a = unsafe { _mm256_loadu_si256(qa.add(base).cast()) };
                        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(qk, a), scv);
                        isum[t] = _mm256_add_epi32(isum[t], p);
                    }
                }
            }
            let d = unsafe { f16_at(blk.add(kq::Q6K_D)) };
            for t in 0..T {
                let p = _mm256_cvtepi32_ps(isum[t]);
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(d * dv[t]), acc[r][t]);
            }
        }
    }
    for r in 0..R {
        for t in 0..T {
            // SAFETY: the caller owns this tile.
            unsafe { ctx.store(tok + t, row + r, hsum(acc[r][t])) };
        }
    }
}
