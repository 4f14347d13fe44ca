//! x86-64 AVX2 + FMA + F16C kernels (`std::arch`), selected at runtime by [`super::Isa`].
//!
//! Integer formats follow ggml's approach: activations are int8, weight codes are unpacked
//! to unsigned bytes and multiplied with `vpmaddubsw`/`vpmaddwd`, block scales applied in
//! f32. Tiles are R rows × T tokens so one unpacked weight block serves several tokens.

// Tile loops index several per-(row, token) register arrays in lockstep.
#![allow(clippy::needless_range_loop)]

pub(crate) mod float;
mod kquant;
pub(crate) mod marlin;
mod marlin4;
mod mxfp4;
mod q32;
mod q32_gemm;
mod q6k;
pub(crate) mod quant;
mod util;

use marlin_core::QuantFormat;

use super::kernel::{kernel, ActKind, Kernel};
use float::float;
use kquant::q45k;
use marlin4::{marlin4, marlin4_vnni};
use mxfp4::{mxfp4, mxfp4_vnni, mxfp4g, mxfp4g_vnni};
use q32::{q32, q32_vnni, q8_0, q8_0_vnni};
use q32_gemm::{q32g, q32g_vnni, q8_0g, q8_0g_vnni};
use q6k::q6k;

static F32: Kernel = kernel!(ActKind::F32, 4, 2, float, 0);
static F16: Kernel = kernel!(ActKind::F32, 4, 2, float, 1);
static BF16: Kernel = kernel!(ActKind::F32, 4, 2, float, 2);
static Q4_0: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32, 0; g4 = q32g);
static Q4_1: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32, 1; g4 = q32g);
static Q5_0: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32, 2; g4 = q32g);
static Q5_1: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32, 3; g4 = q32g);
static Q8_0: Kernel = kernel!(ActKind::Q8B32, 4, 2, q8_0; g4 = q8_0g);
static Q4_0_VNNI: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32_vnni, 0; g4 = q32g_vnni);
static Q4_1_VNNI: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32_vnni, 1; g4 = q32g_vnni);
static Q5_0_VNNI: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32_vnni, 2; g4 = q32g_vnni);
static Q5_1_VNNI: Kernel = kernel!(ActKind::Q8B32, 4, 2, q32_vnni, 3; g4 = q32g_vnni);
static Q8_0_VNNI: Kernel = kernel!(ActKind::Q8B32, 4, 2, q8_0_vnni; g4 = q8_0g_vnni);
static MXFP4: Kernel = kernel!(ActKind::Q8B32, 4, 2, mxfp4; g4 = mxfp4g);
static MXFP4_VNNI: Kernel = kernel!(ActKind::Q8B32, 4, 2, mxfp4_vnni; g4 = mxfp4g_vnni);
static Q4_K: Kernel = kernel!(ActKind::Q8B256, 2, 1, q45k, false);
static Q5_K: Kernel = kernel!(ActKind::Q8B256, 2, 1, q45k, true);
static Q6_K: Kernel = kernel!(ActKind::Q8B256, 2, 1, q6k);

/// One 4-bit metal-marlin kernel pair (AVX2, AVX-VNNI) per kind and group.
macro_rules! marlin4_kernels {
    ($($name:ident, $vnni:ident, $k:literal, $g:literal;)*) => {$(
        static $name: Kernel = kernel!(ActKind::Q8B32, 4, 2, marlin4, $k, $g);
        static $vnni: Kernel = kernel!(ActKind::Q8B32, 4, 2, marlin4_vnni, $k, $g);
    )*};
}

marlin4_kernels! {
    FP4_G32, FP4_G32_V, 0, 32;
    FP4_G64, FP4_G64_V, 0, 64;
    FP4_G128, FP4_G128_V, 0, 128;
    FP4_G256, FP4_G256_V, 0, 256;
    NVFP4, NVFP4_V, 1, 16;
    INT4_G32, INT4_G32_V, 2, 32;
    INT4_G64, INT4_G64_V, 2, 64;
    INT4_G128, INT4_G128_V, 2, 128;
    INT4_G256, INT4_G256_V, 2, 256;
    INT4Z_G32, INT4Z_G32_V, 3, 32;
    INT4Z_G64, INT4Z_G64_V, 3, 64;
    INT4Z_G128, INT4Z_G128_V, 3, 128;
    INT4Z_G256, INT4Z_G256_V, 3, 256;
    INT8_G32, INT8_G32_V, 4, 32;
    INT8_G64, INT8_G64_V, 4, 64;
    INT8_G128, INT8_G128_V, 4, 128;
    INT8_G256, INT8_G256_V, 4, 256;
}

/// The kernel of a 4-bit (or symmetric 8-bit) metal-marlin format.
fn marlin_kernel(format: QuantFormat, vnni: bool) -> Option<&'static Kernel> {
    use marlin_core::{Group as G, IntBits};
    let pick = |a: &'static Kernel, v: &'static Kernel| Some(if vnni { v } else { a });
    match format {
        QuantFormat::Fp4(g) => match g {
            G::G32 => pick(&FP4_G32, &FP4_G32_V),
            G::G64 => pick(&FP4_G64, &FP4_G64_V),
            G::G128 => pick(&FP4_G128, &FP4_G128_V),
            G::G256 => pick(&FP4_G256, &FP4_G256_V),
        },
        QuantFormat::Nvfp4 => pick(&NVFP4, &NVFP4_V),
        QuantFormat::Int(i) if i.bits == IntBits::B4 => match (i.zeros, i.group) {
            (false, G::G32) => pick(&INT4_G32, &INT4_G32_V),
            (false, G::G64) => pick(&INT4_G64, &INT4_G64_V),
            (false, G::G128) => pick(&INT4_G128, &INT4_G128_V),
            (false, G::G256) => pick(&INT4_G256, &INT4_G256_V),
            (true, G::G32) => pick(&INT4Z_G32, &INT4Z_G32_V),
            (true, G::G64) => pick(&INT4Z_G64, &INT4Z_G64_V),
            (true, G::G128) => pick(&INT4Z_G128, &INT4Z_G128_V),
            (true, G::G256) => pick(&INT4Z_G256, &INT4Z_G256_V),
        },
        QuantFormat::Int(i) if i.bits == IntBits::B8 && !i.zeros => match i.group {
            G::G32 => pick(&INT8_G32, &INT8_G32_V),
            G::G64 => pick(&INT8_G64, &INT8_G64_V),
            G::G128 => pick(&INT8_G128, &INT8_G128_V),
            G::G256 => pick(&INT8_G256, &INT8_G256_V),
        },
        _ => None,
    }
}

/// The AVX2 kernel for `format`, if it has one; `vnni` picks the AVX-VNNI variants of the
/// 32-element formats (K-quants scale through `vpmaddwd` either way, so they share one).
pub(super) fn kernel_for(format: QuantFormat, vnni: bool) -> Option<&'static Kernel> {
    Some(match format {
        QuantFormat::Q4_0 if vnni => &Q4_0_VNNI,
        QuantFormat::Q4_1 if vnni => &Q4_1_VNNI,
        QuantFormat::Q5_0 if vnni => &Q5_0_VNNI,
        QuantFormat::Q5_1 if vnni => &Q5_1_VNNI,
        QuantFormat::Q8_0 if vnni => &Q8_0_VNNI,
        QuantFormat::MXFP4 if vnni => &MXFP4_VNNI,
        QuantFormat::F32 => &F32,
        QuantFormat::F16 => &F16,
        QuantFormat::BF16 => &BF16,
        QuantFormat::Q4_0 => &Q4_0,
        QuantFormat::Q4_1 => &Q4_1,
        QuantFormat::Q5_0 => &Q5_0,
        QuantFormat::Q5_1 => &Q5_1,
        QuantFormat::Q8_0 => &Q8_0,
        QuantFormat::MXFP4 => &MXFP4,
        QuantFormat::Q4_K => &Q4_K,
        QuantFormat::Q5_K => &Q5_K,
        QuantFormat::Q6_K => &Q6_K,
        f if f.is_marlin() => return marlin_kernel(f, vnni),
        _ => return None,
    })
}
