//! AVX2 / AVX-VNNI tiles for the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
//! against Q8 32-block activations.
//!
//! Per block, the weight's `[d, m]` (or `[d, d]`) pair is converted with one `vcvtph2ps` and
//! multiplied by the activation's `[d, d·Σq]` pair: lane 0 scales the integer dot, lane 1
//! accumulates the offset term (`m·Σa`, or `d·Σa` times −zero for the `_0` formats).

use std::arch::x86_64::*;

use super::util::{bits_to_bytes, hsum, prefetch_rows_ahead};
use crate::matmul::blocks::b32;
use crate::matmul::kernel::Ctx;

/// Σ u8 × i8 over groups of 4 bytes → 8 × i32 (no i16 saturation for the ranges used here).
#[inline(always)]
pub(super) unsafe fn dot<const VNNI: bool>(u: __m256i, s: __m256i) -> __m256i {
    if VNNI {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
    } else {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
}

/// The 32 unsigned codes of a Q4/Q5 block in element order.
#[inline(always)]
pub(super) unsafe fn codes<const F: u8>(blk: *const u8) -> __m256i {
    let l = b32(F);
    // Both halves hold the 16 code bytes; the upper half is shifted to its high nibbles.
    let qs = _mm256_broadcastsi128_si256(_mm_loadu_si128(blk.add(l.qs).cast()));
    let q = _mm256_and_si256(
        _mm256_srlv_epi64(qs, _mm256_setr_epi64x(0, 0, 4, 4)),
        _mm256_set1_epi8(0x0F),
    );
    if l.has_qh {
        let qh = blk.add(l.qh).cast::<u32>().read_unaligned();
        _mm256_or_si256(
            q,
            _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)),
        )
    } else {
        q
    }
}

/// Lane 1 of `v`.
#[inline(always)]
unsafe fn lane1(v: __m128) -> f32 {
    _mm_cvtss_f32(_mm_movehdup_ps(v))
}

/// Q4_0/Q4_1/Q5_0/Q5_1 tile body (format id as in [`b32`]).
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; inlined only into callers with the features.
#[inline(always)]
unsafe fn q32_body<const VNNI: bool, const F: u8, const R: usize, const T: usize>(
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
    let (qa, dsa) = (ctx.acts.qs.as_ptr(), ctx.acts.ds.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut macc = [[_mm_setzero_ps(); T]; R];
    for b in 0..nb {
        let mut av = [_mm256_setzero_si256(); T];
        let mut ads = [_mm_setzero_ps(); T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            av[t] = _mm256_loadu_si256(qa.add(i * 32).cast());
            ads[t] = _mm_castpd_ps(_mm_load_sd(dsa.add(i).cast()));
        }
        for r in 0..R {
            let blk = w.add(r * rb + b * l.bytes);
            if T == 1 {
                prefetch_rows_ahead(blk, rb);
            }
            let wdm = if l.has_m {
                _mm_cvtph_ps(_mm_cvtsi32_si128(blk.cast::<i32>().read_unaligned()))
            } else {
                _mm_cvtph_ps(_mm_set1_epi16(blk.cast::<i16>().read_unaligned()))
            };
            let q = codes::<F>(blk);
            for t in 0..T {
                let p = _mm256_cvtepi32_ps(dot::<VNNI>(q, av[t]));
                let sc = _mm_mul_ps(wdm, ads[t]);
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_broadcastss_ps(sc), acc[r][t]);
                macc[r][t] = _mm_add_ps(macc[r][t], sc);
            }
        }
    }
    let factor = if l.has_m { 1.0 } else { -l.zero };
    for r in 0..R {
        for t in 0..T {
            let v = hsum(acc[r][t]) + factor * lane1(macc[r][t]);
            ctx.store(tok + t, row + r, v);
        }
    }
}

/// Q8_0 tile body: signed × signed via |w| and sign-transferred activations.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; inlined only into callers with the features.
#[inline(always)]
unsafe fn q8_0_body<const VNNI: bool, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let nb = ctx.cols / 32;
    let rb = ctx.row_bytes;
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.qs.len() >= (tok + T) * ctx.cols && rb == nb * 34);
    let w = ctx.w[row * rb..].as_ptr();
    let (qa, dsa) = (ctx.acts.qs.as_ptr(), ctx.acts.ds.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    for b in 0..nb {
        let mut av = [_mm256_setzero_si256(); T];
        let mut ad = [_mm_setzero_ps(); T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            av[t] = _mm256_loadu_si256(qa.add(i * 32).cast());
            ad[t] = _mm_load_ss(dsa.add(i).cast());
        }
        for r in 0..R {
            let blk = w.add(r * rb + b * 34);
            if T == 1 {
                prefetch_rows_ahead(blk, rb);
            }
            let wd = _mm_cvtph_ps(_mm_set1_epi16(blk.cast::<i16>().read_unaligned()));
            let q = _mm256_loadu_si256(blk.add(2).cast());
            let q_abs = _mm256_abs_epi8(q);
            for t in 0..T {
                let p = _mm256_cvtepi32_ps(dot::<VNNI>(q_abs, _mm256_sign_epi8(av[t], q)));
                let sc = _mm256_broadcastss_ps(_mm_mul_ss(wd, ad[t]));
                acc[r][t] = _mm256_fmadd_ps(p, sc, acc[r][t]);
            }
        }
    }
    for r in 0..R {
        for t in 0..T {
            ctx.store(tok + t, row + r, hsum(acc[r][t]));
        }
    }
}

/// AVX2 Q4/Q5 tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q32<const F: u8, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q32_body::<false, F, R, T>(ctx, row, tok) }
}

/// AVX-VNNI Q4/Q5 tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C, AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q32_vnni<const F: u8, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q32_body::<true, F, R, T>(ctx, row, tok) }
}

/// AVX2 Q8_0 tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0<const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q8_0_body::<false, R, T>(ctx, row, tok) }
}

/// AVX-VNNI Q8_0 tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C, AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q8_0_vnni<const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q8_0_body::<true, R, T>(ctx, row, tok) }
}
