//! AVX2 tiles for the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against
//! Q8 32-block activations.

use std::arch::x86_64::*;

use super::util::{bits_to_bytes, dot_u8i8, f16_at, hsum};
use crate::matmul::blocks::b32;
use crate::matmul::kernel::Ctx;

/// The 32 unsigned codes of a Q4/Q5 block in element order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn codes<const F: u8>(blk: *const u8) -> __m256i {
    let l = b32(F);
    // SAFETY: blk points at a whole block of this format (caller contract).
    let qs = unsafe { _mm_loadu_si128(blk.add(l.qs).cast()) };
    let q = _mm256_and_si256(
        _mm256_set_m128i(_mm_srli_epi16::<4>(qs), qs),
        _mm256_set1_epi8(0x0F),
    );
    if l.has_qh {
        // SAFETY: as above; the high-bit mask lies inside the block.
        let qh = unsafe { blk.add(l.qh).cast::<u32>().read_unaligned() };
        _mm256_or_si256(
            q,
            _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)),
        )
    } else {
        q
    }
}

/// Q4_0/Q4_1/Q5_0/Q5_1 tile (format id as in [`b32`]); `_0` formats use `m = −zero·d`.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; the CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q32<const F: u8, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let l = b32(F);
    let nb = ctx.cols / 32;
    let rb = ctx.row_bytes;
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.qs.len() >= (tok + T) * ctx.cols && rb == nb * l.bytes);
    let w = ctx.w[row * rb..].as_ptr();
    let (qa, da, sa) = (
        ctx.acts.qs.as_ptr(),
        ctx.acts.d.as_ptr(),
        ctx.acts.s.as_ptr(),
    );
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut macc = [[0f32; T]; R];
    for b in 0..nb {
        let mut av = [_mm256_setzero_si256(); T];
        let mut dv = [0f32; T];
        let mut sv = [0f32; T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            // SAFETY: block i of the activations exists (tile inside the matrix).
            unsafe {
                av[t] = _mm256_loadu_si256(qa.add(i * 32).cast());
                dv[t] = *da.add(i);
                sv[t] = *sa.add(i);
            }
        }
        for r in 0..R {
            // SAFETY: rows row..row+R are inside the weight buffer.
            let blk = unsafe { w.add(r * rb + b * l.bytes) };
            let dw = unsafe { f16_at(blk) };
            let m = if l.has_m {
                unsafe { f16_at(blk.add(2)) }
            } else {
                -l.zero * dw
            };
            let q = unsafe { codes::<F>(blk) };
            for t in 0..T {
                let p = _mm256_cvtepi32_ps(dot_u8i8(q, av[t]));
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * dv[t]), acc[r][t]);
                macc[r][t] += m * sv[t];
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

/// Q8_0 tile: signed × signed via |w| and sign-transferred activations.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; the CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0<const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    let nb = ctx.cols / 32;
    let rb = ctx.row_bytes;
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.qs.len() >= (tok + T) * ctx.cols && rb == nb * 34);
    let w = ctx.w[row * rb..].as_ptr();
    let (qa, da) = (ctx.acts.qs.as_ptr(), ctx.acts.d.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    for b in 0..nb {
        let mut av = [_mm256_setzero_si256(); T];
        let mut dv = [0f32; T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            // SAFETY: block i of the activations exists.
            unsafe {
                av[t] = _mm256_loadu_si256(qa.add(i * 32).cast());
                dv[t] = *da.add(i);
            }
        }
        for r in 0..R {
            // SAFETY: rows row..row+R are inside the weight buffer.
            let blk = unsafe { w.add(r * rb + b * 34) };
            let dw = unsafe { f16_at(blk) };
            let q = unsafe { _mm256_loadu_si256(blk.add(2).cast()) };
            let qa_abs = _mm256_abs_epi8(q);
            for t in 0..T {
                let p = dot_u8i8(qa_abs, _mm256_sign_epi8(av[t], q));
                let p = _mm256_cvtepi32_ps(p);
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * dv[t]), acc[r][t]);
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
