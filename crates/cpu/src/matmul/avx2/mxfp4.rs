//! AVX2 / AVX-VNNI tiles for ggml's MXFP4 (E8M0 scale byte + 16 bytes of E2M1 nibbles)
//! against Q8 32-block activations, as ggml does it: the nibbles index the doubled int8
//! table with one `vpshufb`, the signed × signed dot moves the weights' signs onto the
//! activations (`vpsignb`), and each block is scaled by `2^(e−128) · d_x`.

use std::arch::x86_64::*;

use marlin_core::formats::{e8m0_to_f32_half, MXFP4_KVALUES};

use super::q32::dot;
use super::q32_gemm::{finish, fold4, group_acts};
use super::util::{hsum, prefetch_rows_ahead};
use crate::matmul::kernel::Ctx;

/// Bytes of one MXFP4 block.
const BLOCK: usize = 17;

/// The kvalue table in both 128-bit lanes (for the in-lane `vpshufb`).
#[inline(always)]
unsafe fn table() -> __m256i {
    _mm256_broadcastsi128_si256(_mm_loadu_si128(MXFP4_KVALUES.as_ptr().cast()))
}

/// The block's 32 weights as signed kvalues in element order, and their absolute values.
#[inline(always)]
unsafe fn weights(tab: __m256i, blk: *const u8) -> (__m256i, __m256i) {
    // Both halves hold the 16 code bytes; the upper half is shifted to its high nibbles.
    let qs = _mm256_broadcastsi128_si256(_mm_loadu_si128(blk.add(1).cast()));
    let idx = _mm256_and_si256(
        _mm256_srlv_epi64(qs, _mm256_setr_epi64x(0, 0, 4, 4)),
        _mm256_set1_epi8(0x0F),
    );
    let k = _mm256_shuffle_epi8(tab, idx);
    (k, _mm256_abs_epi8(k))
}

/// R rows × T tokens.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; inlined only into callers with the features.
#[inline(always)]
unsafe fn mxfp4_body<const VNNI: bool, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let (nb, rb) = (ctx.cols / 32, ctx.row_bytes);
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.qs.len() >= (tok + T) * ctx.cols && rb == nb * BLOCK);
    let w = ctx.w[row * rb..].as_ptr();
    let (qa, dsa) = (ctx.acts.qs.as_ptr(), ctx.acts.ds.as_ptr());
    let tab = table();
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    for b in 0..nb {
        let mut av = [_mm256_setzero_si256(); T];
        let mut ad = [0f32; T];
        for t in 0..T {
            let i = (tok + t) * nb + b;
            av[t] = _mm256_loadu_si256(qa.add(i * 32).cast());
            ad[t] = (*dsa.add(i))[0];
        }
        for r in 0..R {
            let blk = w.add(r * rb + b * BLOCK);
            if T == 1 {
                prefetch_rows_ahead(blk, rb);
            }
            let dw = e8m0_to_f32_half(*blk);
            let (k, k_abs) = weights(tab, blk);
            for t in 0..T {
                let p = _mm256_cvtepi32_ps(dot::<VNNI>(k_abs, _mm256_sign_epi8(av[t], k)));
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * ad[t]), acc[r][t]);
            }
        }
    }
    for r in 0..R {
        for t in 0..T {
            ctx.store(tok + t, row + r, hsum(acc[r][t]));
        }
    }
}

/// R rows × 4 tokens of one token group (`tok % 4 == 0`), scaled by the grouped scales.
///
/// # Safety
/// As [`mxfp4_body`], plus `tok % 4 == 0`.
#[inline(always)]
unsafe fn mxfp4g_body<const VNNI: bool, const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    let (nb, rb) = (ctx.cols / 32, ctx.row_bytes);
    debug_assert!(tok.is_multiple_of(4) && tok + 4 <= ctx.n_tokens && row + R <= ctx.rows);
    debug_assert!(ctx.acts.grp.len() >= (tok / 4 + 1) * nb * 8 && rb == nb * BLOCK);
    let w = ctx.w[row * rb..].as_ptr();
    let tab = table();
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..nb {
        let (a, da, _) = group_acts(ctx, tok, b);
        for r in 0..R {
            let blk = w.add(r * rb + b * BLOCK);
            let dw = _mm256_set1_ps(e8m0_to_f32_half(*blk));
            let (k, k_abs) = weights(tab, blk);
            let p = [
                dot::<VNNI>(k_abs, _mm256_sign_epi8(a[0], k)),
                dot::<VNNI>(k_abs, _mm256_sign_epi8(a[1], k)),
                dot::<VNNI>(k_abs, _mm256_sign_epi8(a[2], k)),
                dot::<VNNI>(k_abs, _mm256_sign_epi8(a[3], k)),
            ];
            acc[r] = _mm256_fmadd_ps(fold4(p), _mm256_mul_ps(dw, da), acc[r]);
        }
    }
    for r in 0..R {
        finish(ctx, tok, row + r, acc[r], _mm_setzero_ps(), 0.0);
    }
}

/// AVX2 MXFP4 tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn mxfp4<const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { mxfp4_body::<false, R, T>(ctx, row, tok) }
}

/// AVX-VNNI MXFP4 tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C, AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn mxfp4_vnni<const R: usize, const T: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { mxfp4_body::<true, R, T>(ctx, row, tok) }
}

/// AVX2 4-token MXFP4 tile. # Safety: TileFn contract, `tok % 4 == 0`; AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn mxfp4g<const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { mxfp4g_body::<false, R>(ctx, row, tok) }
}

/// AVX-VNNI 4-token MXFP4 tile. # Safety: as [`mxfp4g`], plus AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn mxfp4g_vnni<const R: usize>(ctx: &Ctx, row: usize, tok: usize) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { mxfp4g_body::<true, R>(ctx, row, tok) }
}
