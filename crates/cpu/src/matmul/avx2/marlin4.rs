//! AVX2 tiles for the 4-bit metal-marlin formats (fp4 g32–256, nvfp4, int4, int4z) and
//! symmetric int8 against Q8 32-block activations, straight from the packed blocks.
//!
//! Per 32 elements: 16 code bytes are split into nibbles and interleaved back into element
//! order. Integer codes are multiplied unsigned with the int8 activations and the zero
//! point comes back through the activation's `d·Σq`; E2M1 codes go through a `pshufb`
//! table of doubled values (−12..12, exact in int8) and a signed × signed dot. The i32 lanes
//! of a 32-element dot hold elements 0–15 in lanes 0–3 and 16–31 in lanes 4–7, so nvfp4's
//! two 16-element scales multiply lane halves. Symmetric int8 codes become `c − 128` (an
//! i8) and take the signed path too (unsigned codes up to 255 would overflow `vpmaddubsw`).

use std::arch::x86_64::*;

use marlin_core::marlin_format::{block_geom, BlockGeom};
use marlin_core::{Group, IntBits, IntFormat, QuantFormat};

use super::q32::dot;
use super::util::{hsum, prefetch_rows_ahead};
use crate::matmul::blocks::f16_at;
use crate::matmul::kernel::Ctx;
use crate::matmul::marlin::e4m3;

/// Kinds (const parameter `K`).
pub(super) const FP4: u8 = 0;
pub(super) const NVFP4: u8 = 1;
pub(super) const INT4: u8 = 2;
pub(super) const INT4Z: u8 = 3;
pub(super) const INT8: u8 = 4;

/// The format of kind `K` with group `G`.
fn format_of(k: u8, g: usize) -> QuantFormat {
    let group = Group::from_size(g).unwrap_or(Group::G128);
    let int = |zeros| {
        QuantFormat::Int(IntFormat {
            bits: IntBits::B4,
            zeros,
            group,
        })
    };
    match k {
        FP4 => QuantFormat::Fp4(group),
        NVFP4 => QuantFormat::Nvfp4,
        INT4 => int(false),
        INT8 => QuantFormat::Int(IntFormat {
            bits: IntBits::B8,
            zeros: false,
            group,
        }),
        _ => int(true),
    }
}

/// The 32 codes at `p` (16 bytes, element 2i in the low nibble of byte i), in element order.
#[inline(always)]
unsafe fn codes32(p: *const u8) -> __m256i {
    let b = _mm_loadu_si128(p.cast());
    let m = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(b, m);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
    _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi))
}

/// Per-group scale (and zero) of one block: `s` already includes fp4's ½ and nvfp4's
/// tensor scale.
#[inline(always)]
unsafe fn params<const K: u8>(blk: &[u8], geo: &BlockGeom, s: &mut [f32; 16], z: &mut [f32; 16]) {
    let global = if K == NVFP4 {
        let g = &blk[geo.global_at..geo.global_at + 4];
        f32::from_le_bytes([g[0], g[1], g[2], g[3]])
    } else {
        1.0
    };
    for k in 0..geo.groups {
        let at = geo.scales_at + k * geo.scale_bytes;
        s[k] = match K {
            FP4 => 0.5 * f16_at(&blk[at..]),
            NVFP4 => 0.5 * e4m3(blk[at]) * global,
            _ => f16_at(&blk[at..]),
        };
        z[k] = match K {
            INT4 => 8.0,
            INT8 => 0.0,
            INT4Z => f32::from(blk[geo.zeros_at + k]),
            _ => 0.0,
        };
    }
}

/// Tile body: R rows × T tokens of kind `K`, group `G`.
///
/// # Safety
/// [`crate::matmul::kernel::TileFn`] contract; inlined only into callers with the features.
#[inline(always)]
unsafe fn body<const VNNI: bool, const K: u8, const G: usize, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    let format = format_of(K, G);
    let cols = ctx.cols;
    let nb = cols / 32;
    let rb = ctx.row_bytes;
    let (Some(full), tail) = (block_geom(format, 256), block_geom(format, cols % 256)) else {
        return;
    };
    debug_assert!(row + R <= ctx.rows && tok + T <= ctx.n_tokens);
    let (qa, dsa) = (ctx.acts.qs.as_ptr(), ctx.acts.ds.as_ptr());
    let k2 = _mm256_setr_epi8(
        0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12, 0, 1, 2, 3, 4, 6, 8, 12, 0, -1,
        -2, -3, -4, -6, -8, -12,
    );
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut zacc = [[0f32; T]; R];
    let (mut s, mut z) = ([[0f32; 16]; R], [[0f32; 16]; R]);
    let (mut at, mut e) = (0usize, 0usize);
    while e < cols {
        let geo = if cols - e >= 256 {
            full
        } else {
            tail.unwrap_or(full)
        };
        for r in 0..R {
            let blk = &ctx.w[(row + r) * rb + at..(row + r) * rb + at + geo.bytes];
            params::<K>(blk, &geo, &mut s[r], &mut z[r]);
        }
        for c in 0..geo.n / 32 {
            let cb = e / 32 + c;
            let mut av = [_mm256_setzero_si256(); T];
            let mut ad = [[0f32; 2]; T];
            for t in 0..T {
                av[t] = _mm256_loadu_si256(qa.add((tok + t) * cols + cb * 32).cast());
                ad[t] = *dsa.add((tok + t) * nb + cb);
            }
            for r in 0..R {
                let p = if K == INT8 {
                    ctx.w.as_ptr().add((row + r) * rb + at + c * 32)
                } else {
                    ctx.w.as_ptr().add((row + r) * rb + at + c * 16)
                };
                if T == 1 {
                    prefetch_rows_ahead(p, rb);
                }
                let u = if K == INT8 {
                    _mm256_xor_si256(_mm256_loadu_si256(p.cast()), _mm256_set1_epi8(-128))
                } else {
                    codes32(p)
                };
                let (g0, g1) = if K == NVFP4 {
                    (2 * c, 2 * c + 1)
                } else {
                    (c * 32 / G, c * 32 / G)
                };
                let sv = _mm256_setr_ps(
                    s[r][g0], s[r][g0], s[r][g0], s[r][g0], s[r][g1], s[r][g1], s[r][g1], s[r][g1],
                );
                if K == FP4 || K == NVFP4 || K == INT8 {
                    let w = if K == INT8 {
                        u
                    } else {
                        _mm256_shuffle_epi8(k2, u)
                    };
                    let wa = _mm256_abs_epi8(w);
                    for t in 0..T {
                        let d = dot::<VNNI>(wa, _mm256_sign_epi8(av[t], w));
                        let sc = _mm256_mul_ps(sv, _mm256_set1_ps(ad[t][0]));
                        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, acc[r][t]);
                    }
                } else {
                    for t in 0..T {
                        let d = dot::<VNNI>(u, av[t]);
                        let sc = _mm256_mul_ps(sv, _mm256_set1_ps(ad[t][0]));
                        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, acc[r][t]);
                        zacc[r][t] += s[r][g0] * z[r][g0] * ad[t][1];
                    }
                }
            }
        }
        at += geo.bytes;
        e += geo.n;
    }
    for r in 0..R {
        for t in 0..T {
            ctx.store(tok + t, row + r, hsum(acc[r][t]) - zacc[r][t]);
        }
    }
}

/// AVX2 4-bit metal-marlin tile. # Safety: TileFn contract; CPU has AVX2, FMA, F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn marlin4<const K: u8, const G: usize, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { body::<false, K, G, R, T>(ctx, row, tok) }
}

/// AVX-VNNI variant. # Safety: TileFn contract; CPU has AVX2, FMA, F16C, AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn marlin4_vnni<const K: u8, const G: usize, const R: usize, const T: usize>(
    ctx: &Ctx,
    row: usize,
    tok: usize,
) {
    // SAFETY: forwarded contract; this function enables the features the body needs.
    unsafe { body::<true, K, G, R, T>(ctx, row, tok) }
}
