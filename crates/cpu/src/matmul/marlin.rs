//! Fast block decoders of the metal-marlin formats (fp4, nvfp4, fp8, int2/3/4/8): each
//! 256-element block is decoded through a per-group lookup table of scaled values, then the
//! dequantize-row path dots it with f32 activations. Bit-identical to the core reference.

use std::sync::LazyLock;

use marlin_core::formats::marlin::{row_blocks, unpack_params, GroupParams};
use marlin_core::formats::{e4m3_to_f32, E2M1_TABLE};
use marlin_core::marlin_format::BlockGeom;
use marlin_core::QuantFormat;

#[cfg(target_arch = "x86_64")]
use super::avx2;
use super::Isa;

/// E4M3 code → value for all 256 codes.
static E4M3: LazyLock<[f32; 256]> = LazyLock::new(|| {
    let mut t = [0f32; 256];
    for (c, v) in t.iter_mut().enumerate() {
        *v = e4m3_to_f32(c as u8);
    }
    t
});

/// E4M3 code → value through the table.
#[inline]
pub(crate) fn e4m3(code: u8) -> f32 {
    E4M3[usize::from(code)]
}

/// Decode a row of a metal-marlin `format` (full blocks and a tail) into `dst` (sizes
/// checked by the caller). Returns false for other formats.
pub(super) fn dequant_row(format: QuantFormat, isa: Isa, src: &[u8], dst: &mut [f32]) -> bool {
    if !format.is_marlin() {
        return false;
    }
    let mut ps = [GroupParams {
        scale: 0.0,
        zero: 0,
    }; 16];
    let (mut at, mut e) = (0, 0);
    for geo in row_blocks(format, dst.len()) {
        let blk = &src[at..at + geo.bytes];
        let global = unpack_params(format, &geo, blk, &mut ps);
        for (k, p) in ps[..geo.groups].iter().enumerate() {
            let (lo, hi) = (k * geo.group, ((k + 1) * geo.group).min(geo.n));
            decode_group(
                format,
                isa,
                &geo,
                blk,
                lo,
                hi - lo,
                *p,
                global,
                &mut dst[e + lo..e + hi],
            );
        }
        at += geo.bytes;
        e += geo.n;
    }
    true
}

/// Decode elements `at..at + g` of a block (`g` is a multiple of 16).
#[allow(clippy::too_many_arguments)]
fn decode_group(
    format: QuantFormat,
    isa: Isa,
    geo: &BlockGeom,
    blk: &[u8],
    at: usize,
    g: usize,
    p: GroupParams,
    global: f32,
    y: &mut [f32],
) {
    let mut lut = [0f32; 16];
    match format {
        QuantFormat::Fp4(_) | QuantFormat::Nvfp4 => {
            let s = if format == QuantFormat::Nvfp4 {
                p.scale * global
            } else {
                p.scale
            };
            for (l, e) in lut.iter_mut().zip(E2M1_TABLE) {
                *l = e * s;
            }
            nibbles(isa, &blk[at / 2..(at + g) / 2], &lut, y);
        }
        QuantFormat::Fp8 => {
            #[cfg(target_arch = "x86_64")]
            if isa != Isa::Scalar {
                // SAFETY: SIMD families are only selectable with AVX2; g is a multiple of 32.
                unsafe { avx2::marlin::bytes_table(&blk[at..at + g], &E4M3, p.scale, y) };
                return;
            }
            for (v, &c) in y.iter_mut().zip(&blk[at..at + g]) {
                *v = E4M3[usize::from(c)] * p.scale;
            }
        }
        QuantFormat::Int(i) => {
            let bits = i.bits.bits();
            let z = if i.zeros {
                f32::from(p.zero)
            } else {
                (1u32 << (bits - 1)) as f32
            };
            let levels = 1usize << bits.min(4);
            for (c, l) in lut.iter_mut().enumerate().take(levels) {
                *l = p.scale * (c as f32 - z);
            }
            match bits {
                8 => {
                    #[cfg(target_arch = "x86_64")]
                    if isa != Isa::Scalar {
                        // SAFETY: SIMD families are only selectable with AVX2; g ≥ 16.
                        unsafe { avx2::marlin::bytes_affine(&blk[at..at + g], p.scale, z, y) };
                        return;
                    }
                    for (v, &c) in y.iter_mut().zip(&blk[at..at + g]) {
                        *v = p.scale * (f32::from(c) - z);
                    }
                }
                4 => nibbles(isa, &blk[at / 2..(at + g) / 2], &lut, y),
                2 => {
                    #[cfg(target_arch = "x86_64")]
                    if isa != Isa::Scalar {
                        // SAFETY: as above; g is a multiple of 16.
                        unsafe { avx2::marlin::crumbs(&blk[at / 4..(at + g) / 4], &lut, y) };
                        return;
                    }
                    for (v, &b) in y.chunks_exact_mut(4).zip(&blk[at / 4..(at + g) / 4]) {
                        for (k, o) in v.iter_mut().enumerate() {
                            *o = lut[usize::from((b >> (2 * k)) & 3)];
                        }
                    }
                }
                _ => {
                    #[cfg(target_arch = "x86_64")]
                    if isa != Isa::Scalar {
                        let (lo, hi) = (
                            &blk[at / 4..(at + g) / 4],
                            &blk[geo.n / 4 + at / 8..geo.n / 4 + (at + g) / 8],
                        );
                        // SAFETY: as above; g is a multiple of 32.
                        unsafe { avx2::marlin::tribits(lo, hi, &lut, y) };
                        return;
                    }
                    let (lo, hi) = (
                        &blk[at / 4..(at + g) / 4],
                        &blk[geo.n / 4 + at / 8..geo.n / 4 + (at + g) / 8],
                    );
                    for ((v, l), &h) in y.chunks_exact_mut(8).zip(lo.chunks_exact(2)).zip(hi) {
                        let bits = u16::from(l[0]) | (u16::from(l[1]) << 8);
                        for (k, o) in v.iter_mut().enumerate() {
                            let c = ((bits >> (2 * k)) & 3) as u8 | (((h >> k) & 1) << 2);
                            *o = lut[usize::from(c)];
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Two table lookups per byte: low nibble first.
#[inline]
fn nibbles(isa: Isa, src: &[u8], lut: &[f32; 16], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: SIMD families are only selectable on CPUs with AVX2; src is 8+ bytes.
        unsafe { avx2::marlin::nibbles(src, lut, y) };
        return;
    }
    let _ = isa;
    for (v, &b) in y.chunks_exact_mut(2).zip(src) {
        v[0] = lut[usize::from(b & 15)];
        v[1] = lut[usize::from(b >> 4)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_identical_to_the_core_reference() {
        // 608 = two full blocks and a 96-element tail.
        let x: Vec<f32> = (0..608)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.013)
            .collect();
        for f in QuantFormat::marlin_all() {
            let mut b = vec![0u8; f.row_bytes(608).unwrap()];
            marlin_core::formats::quantize(f, &x, &mut b).unwrap();
            let mut want = vec![0f32; 608];
            marlin_core::formats::dequantize(f, &b, &mut want).unwrap();
            for isa in Isa::available() {
                let mut got = vec![1f32; 608];
                assert!(dequant_row(f, isa, &b, &mut got), "{f}");
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{f} {isa:?}");
            }
        }
        let q40 = dequant_row(QuantFormat::Q4_0, Isa::Scalar, &[0u8; 18], &mut [0f32; 32]);
        assert!(!q40);
    }
}
