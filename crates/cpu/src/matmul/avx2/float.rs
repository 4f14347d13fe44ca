//! AVX2 FMA tiles for float weights (F32, F16 via F16C, BF16) against f32 activations,
//! and the f32 dot used by the generic fallback.

use std::arch::x86_64::*;

use super::util::{hsum, prefetch_rows_ahead};
use crate::matmul::kernel::Ctx;

/// Eight weights at element `i` of a row: format 0 = F32, 1 = F16, 2 = BF16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8<const F: u8>(row: *const u8, i: usize) -> __m256 {
    // SAFETY: the caller guarantees 8 elements at i.
    unsafe {
        match F {
            0 => _mm256_loadu_ps(row.add(4 * i).cast()),
            1 => _mm256_cvtph_ps(_mm_loadu_si128(row.add(2 * i).cast())),
            _ => {
                let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(row.add(2 * i).cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h))
            }
        }
    }
}

/// One weight at element `i` (row tails).
#[inline]
unsafe fn load1<const F: u8>(row: *const u8, i: usize) -> f32 {
    // SAFETY: the caller guarantees element i exists.
    unsafe {
        match F {
            0 => row.add(4 * i).cast::<f32>().read_unaligned(),
            1 => half::f16::from_bits(row.add(2 * i).cast::<u16>().read_unaligned()).to_f32(),
            _ => f32::from_bits((row.add(2 * i).cast::<u16>().read_unaligned() as u32) << 16),
        }
    }
}

/// Float-weight tile.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; the CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn float<const F: u8, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let cols = ctx.cols;
    let rb = ctx.row_bytes;
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    debug_assert!(ctx.acts.f.len() >= (tok + T) * cols);
    let w = ctx.w[row * rb..].as_ptr();
    let x = ctx.acts.f[tok * cols..].as_ptr();
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let main = cols - cols % 8;
    let mut i = 0;
    while i < main {
        let mut xv = [_mm256_setzero_ps(); T];
        for (t, v) in xv.iter_mut().enumerate() {
            // SAFETY: 8 values of token tok+t at i exist.
            *v = unsafe { _mm256_loadu_ps(x.add(t * cols + i)) };
        }
        for r in 0..R {
            // SAFETY: row row+r has `cols` elements.
            let wv = unsafe { load8::<F>(w.add(r * rb), i) };
            if T == 1 && i % 16 == 0 {
                prefetch_rows_ahead(unsafe { w.add(r * rb + i * rb / cols) }, rb);
            }
            for t in 0..T {
                acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
            }
        }
        i += 8;
    }
    for r in 0..R {
        for t in 0..T {
            let mut v = hsum(acc[r][t]);
            for k in main..cols {
                // SAFETY: k < cols.
                v += unsafe { load1::<F>(w.add(r * rb), k) * *x.add(t * cols + k) };
            }
            // SAFETY: the caller owns this tile.
            unsafe { ctx.store(tok + t, row + r, v) };
        }
    }
}

/// Σ a·b over the common length.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let main = n - n % 16;
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i < main {
        // SAFETY: i + 16 <= n.
        unsafe {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(&a[i]), _mm256_loadu_ps(&b[i]), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(&a[i + 8]), _mm256_loadu_ps(&b[i + 8]), s1);
        }
        i += 16;
    }
    let tail: f32 = a[main..n].iter().zip(&b[main..n]).map(|(x, y)| x * y).sum();
    hsum(_mm256_add_ps(s0, s1)) + tail
}
