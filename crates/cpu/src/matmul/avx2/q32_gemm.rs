//! 4-token GEMM tiles for the 32-element formats (AVX2 / AVX-VNNI). The four tokens' integer
//! dots are folded into one vector with three `vphaddd`, so each weight block costs one
//! int→float conversion and one FMA for all four tokens, scaled by the grouped activation
//! scales (`Acts::grp`). Tokens `tok..tok+4` must be a whole group (`tok % 4 == 0`).

use std::arch::x86_64::*;

use super::q32::{codes, dot};
use crate::matmul::blocks::b32;
use crate::matmul::kernel::Ctx;

/// Four tokens' activation codes of block `b`, and the group's `[d × 2]`, `[d·Σq]` vectors.
#[inline(always)]
pub(super) unsafe fn group_acts(ctx: &Ctx, tok: usize, b: usize) -> ([__m256i; 4], __m256, __m128) {
    let nb = ctx.cols / 32;
    let qa = ctx.acts.qs.as_ptr();
    let mut a = [_mm256_setzero_si256(); 4];
    for (j, a) in a.iter_mut().enumerate() {
        *a = _mm256_loadu_si256(qa.add(((tok + j) * nb + b) * 32).cast());
    }
    let sp = ctx.acts.grp.as_ptr().add((tok / 4 * nb + b) * 8);
    let d4 = _mm_loadu_ps(sp);
    (a, _mm256_set_m128(d4, d4), _mm_loadu_ps(sp.add(4)))
}

/// Sum each of four 8-lane vectors into lanes j and j+4 (halves added at the end).
#[inline(always)]
pub(super) unsafe fn fold4(p: [__m256i; 4]) -> __m256 {
    let h01 = _mm256_hadd_epi32(p[0], p[1]);
    let h23 = _mm256_hadd_epi32(p[2], p[3]);
    _mm256_cvtepi32_ps(_mm256_hadd_epi32(h01, h23))
}

/// Write the four tokens of row `r`: both halves of `acc` plus `factor ×` the offset sums.
#[inline(always)]
pub(super) unsafe fn finish(
    ctx: &Ctx,
    tok: usize,
    r: usize,
    acc: __m256,
    macc: __m128,
    factor: f32,
) {
    let v = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let v = _mm_fmadd_ps(macc, _mm_set1_ps(factor), v);
    let mut o = [0f32; 4];
    _mm_storeu_ps(o.as_mut_ptr(), v);
    for (j, &x) in o.iter().enumerate() {
        ctx.store(tok + j, r, x);
    }
}

/// Q4_0/Q4_1/Q5_0/Q5_1 body: R rows × 4 tokens.
#[inline(always)]
unsafe fn q32g_body<const VNNI: bool, const F: u8, const R: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let l = b32(F);
    let (nb, rb) = (ctx.cols / 32, ctx.row_bytes);
    debug_assert!(tok.is_multiple_of(4) && tok + 4 <= ctx.n_tokens && row + R <= ctx.rows);
    debug_assert!(ctx.acts.grp.len() >= (tok / 4 + 1) * nb * 8 && rb == nb * l.bytes);
    let w = ctx.w[row * rb..].as_ptr();
    let mut acc = [_mm256_setzero_ps(); R];
    let mut macc = [_mm_setzero_ps(); R];
    for b in 0..nb {
        let (a, da, sa) = group_acts(ctx, tok, b);
        for r in 0..R {
            let blk = w.add(r * rb + b * l.bytes);
            let wdm = if l.has_m {
                _mm_cvtph_ps(_mm_cvtsi32_si128(blk.cast::<i32>().read_unaligned()))
            } else {
                _mm_cvtph_ps(_mm_set1_epi16(blk.cast::<i16>().read_unaligned()))
            };
            let q = codes::<F>(blk);
            let p = [
                dot::<VNNI>(q, a[0]),
                dot::<VNNI>(q, a[1]),
                dot::<VNNI>(q, a[2]),
                dot::<VNNI>(q, a[3]),
            ];
            let sc = _mm256_mul_ps(_mm256_broadcastss_ps(wdm), da);
            acc[r] = _mm256_fmadd_ps(fold4(p), sc, acc[r]);
            let m = _mm_broadcastss_ps(_mm_movehdup_ps(wdm));
            macc[r] = _mm_fmadd_ps(m, sa, macc[r]);
        }
    }
    let factor = if l.has_m { 1.0 } else { -l.zero };
    for r in 0..R {
        finish(ctx, tok, row + r, acc[r], macc[r], factor);
    }
}

/// Q8_0 body: R rows × 4 tokens.
#[inline(always)]
unsafe fn q8_0g_body<const VNNI: bool, const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    let (nb, rb) = (ctx.cols / 32, ctx.row_bytes);
    debug_assert!(tok.is_multiple_of(4) && tok + 4 <= ctx.n_tokens && row + R <= ctx.rows);
    debug_assert!(ctx.acts.grp.len() >= (tok / 4 + 1) * nb * 8 && rb == nb * 34);
    let w = ctx.w[row * rb..].as_ptr();
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        let (a, da, _) = group_acts(ctx, tok, b);
        for r in 0..R {
            let blk = w.add(r * rb + b * 34);
            let wd = _mm256_cvtph_ps(_mm_set1_epi16(blk.cast::<i16>().read_unaligned()));
            let q = _mm256_loadu_si256(blk.add(2).cast());
            let qa = _mm256_abs_epi8(q);
            let p = [
                dot::<VNNI>(qa, _mm256_sign_epi8(a[0], q)),
                dot::<VNNI>(qa, _mm256_sign_epi8(a[1], q)),
                dot::<VNNI>(qa, _mm256_sign_epi8(a[2], q)),
                dot::<VNNI>(qa, _mm256_sign_epi8(a[3], q)),
            ];
            acc[r] = _mm256_fmadd_ps(fold4(p), _mm256_mul_ps(wd, da), acc[r]);
        }
    }
    for r in 0..R {
        finish(ctx, tok, row + r, acc[r], _mm_setzero_ps(), 0.0);
    }
}

/// AVX2 4-token Q4/Q5 tile. # Safety: TileFn contract, `tok % 4 == 0`; AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q32g<const F: u8, const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q32g_body::<false, F, R>(ctx, row, tok) }
}

/// AVX-VNNI 4-token Q4/Q5 tile. # Safety: as [`q32g`], plus AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q32g_vnni<const F: u8, const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q32g_body::<true, F, R>(ctx, row, tok) }
}

/// AVX2 4-token Q8_0 tile. # Safety: TileFn contract, `tok % 4 == 0`; AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0g<const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q8_0g_body::<false, R>(ctx, row, tok) }
}

/// AVX-VNNI 4-token Q8_0 tile. # Safety: as [`q8_0g`], plus AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn q8_0g_vnni<const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { q8_0g_body::<true, R>(ctx, row, tok) }
}
