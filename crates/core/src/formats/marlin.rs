//! Pack, unpack and decode the metal-marlin formats (layouts in [`crate::marlin_format`]),
//! row by row: a row is its element codes plus one [`GroupParams`] per scale group. GGML
//! MXFP4 is served by the same row API (E2M1 codes, E8M0 scale per 32) so the quantizers
//! can target it too.

use super::fp::{e8m0_to_f32, f16_to_f32, f32_to_f16, E2M1_TABLE, MXFP4_BLOCK_BYTES};
use super::minifloat::{e4m3_to_f32, f32_to_e2m1, f32_to_e4m3};
use crate::marlin_format::{block_geom, BlockGeom};
use crate::{Error, IntFormat, QuantFormat, Result};

/// One scale group's stored parameters: `scale` is the decoded stored value (f16, UE4M3,
/// E8M0 or f32 as the format stores it), `zero` the integer zero point (0 when unused).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupParams {
    pub scale: f32,
    pub zero: u8,
}

/// Elements per scale group of `format`, or `None` when the row API does not handle it.
pub fn scale_group(format: QuantFormat) -> Option<usize> {
    match format {
        QuantFormat::Fp4(g) => Some(g.size()),
        QuantFormat::Int(i) => Some(i.group.size()),
        QuantFormat::Nvfp4 => Some(16),
        QuantFormat::Fp8 => Some(256),
        QuantFormat::MXFP4 => Some(32),
        _ => None,
    }
}

/// Symmetric integer offset 2^(b−1).
#[inline]
fn int_offset(i: IntFormat) -> f32 {
    (1u32 << (i.bits.bits() - 1)) as f32
}

/// Value of `code` in group `p` (`global` is nvfp4's tensor scale, ignored elsewhere).
#[inline]
pub fn decode(format: QuantFormat, code: u8, p: GroupParams, global: f32) -> f32 {
    match format {
        QuantFormat::Nvfp4 => E2M1_TABLE[usize::from(code & 15)] * (p.scale * global),
        QuantFormat::Fp8 => e4m3_to_f32(code) * p.scale,
        QuantFormat::Int(i) if i.zeros => p.scale * (f32::from(code) - f32::from(p.zero)),
        QuantFormat::Int(i) => p.scale * (f32::from(code) - int_offset(i)),
        _ => E2M1_TABLE[usize::from(code & 15)] * p.scale,
    }
}

/// The code nearest to `x` in group `p` (E2M1/E4M3 round to nearest even, integers round
/// half away from zero and clamp).
#[inline]
pub fn nearest(format: QuantFormat, x: f32, p: GroupParams, global: f32) -> u8 {
    let s = match format {
        QuantFormat::Nvfp4 => p.scale * global,
        _ => p.scale,
    };
    if s == 0.0 || !s.is_finite() {
        return match format {
            QuantFormat::Int(i) if i.zeros => p.zero,
            QuantFormat::Int(i) => int_offset(i) as u8,
            _ => 0,
        };
    }
    match format {
        QuantFormat::Fp8 => f32_to_e4m3(x / s),
        QuantFormat::Int(i) => {
            let maxq = ((1u32 << i.bits.bits()) - 1) as f32;
            let z = if i.zeros {
                f32::from(p.zero)
            } else {
                int_offset(i)
            };
            ((x / s).round() + z).clamp(0.0, maxq) as u8
        }
        _ => f32_to_e2m1(x / s),
    }
}

/// Block geometries of a row of `cols` elements: full blocks, then the tail (if any).
pub fn row_blocks(format: QuantFormat, cols: usize) -> impl Iterator<Item = BlockGeom> {
    let full = block_geom(format, 256);
    let tail = block_geom(format, cols % 256).filter(|g| g.n > 0);
    std::iter::repeat_n(full, cols / 256).flatten().chain(tail)
}

/// Scale groups of a row of `cols` elements (the last may be partial).
pub fn row_groups(format: QuantFormat, cols: usize) -> usize {
    scale_group(format).map_or(0, |g| cols.div_ceil(g))
}

/// Check a row's sizes: `codes` elements, `params` and packed `bytes`.
fn check_row(format: QuantFormat, codes: usize, params: usize, bytes: usize) -> Result<usize> {
    let g = scale_group(format).ok_or(Error::Unsupported(format.name(), "marlin row codec"))?;
    let need = format.row_bytes(codes)?;
    let groups = if format == QuantFormat::MXFP4 {
        codes / 32
    } else {
        row_groups(format, codes)
    };
    if params != groups || bytes != need {
        return Err(Error::Shape(format!(
            "{format}: {codes} codes need {groups} params and {need} bytes, got {params} and {bytes}"
        )));
    }
    Ok(g)
}

/// Store a scale as the format does (f16 bits, UE4M3, E8M0 or f32 bytes) at `out`.
fn put_scale(format: QuantFormat, s: f32, out: &mut [u8]) {
    match format {
        QuantFormat::Nvfp4 => out[0] = f32_to_e4m3(s.abs()),
        QuantFormat::Fp8 => out[..4].copy_from_slice(&s.to_le_bytes()),
        QuantFormat::MXFP4 => out[0] = ((s.to_bits() >> 23) & 0xff) as u8,
        _ => out[..2].copy_from_slice(&f32_to_f16(s).to_le_bytes()),
    }
}

/// Pack one row: `codes[cols]`, `params[ceil(cols / scale_group)]`; nvfp4 stores `global`
/// in every block. Scales are stored in the format's precision (pass already-rounded
/// values to get an exact round trip).
pub fn pack_row(
    format: QuantFormat,
    codes: &[u8],
    params: &[GroupParams],
    global: f32,
    out: &mut [u8],
) -> Result<()> {
    check_row(format, codes.len(), params.len(), out.len())?;
    if format == QuantFormat::MXFP4 {
        for ((blk, c), p) in out
            .chunks_exact_mut(MXFP4_BLOCK_BYTES)
            .zip(codes.chunks_exact(32))
            .zip(params)
        {
            put_scale(format, p.scale, blk);
            for j in 0..16 {
                blk[1 + j] = (c[j] & 15) | ((c[j + 16] & 15) << 4);
            }
        }
        return Ok(());
    }
    let (mut at, mut e, mut gi) = (0, 0, 0);
    for geo in row_blocks(format, codes.len()) {
        let blk = &mut out[at..at + geo.bytes];
        blk.fill(0);
        pack_codes(format, &geo, &codes[e..e + geo.n], blk);
        for (k, p) in params[gi..gi + geo.groups].iter().enumerate() {
            put_scale(
                format,
                p.scale,
                &mut blk[geo.scales_at + k * geo.scale_bytes..],
            );
            if let QuantFormat::Int(i) = format {
                if i.zeros {
                    blk[geo.zeros_at + k] = p.zero;
                }
            }
        }
        if format == QuantFormat::Nvfp4 {
            blk[geo.global_at..geo.global_at + 4].copy_from_slice(&global.to_le_bytes());
        }
        at += geo.bytes;
        e += geo.n;
        gi += geo.groups;
    }
    Ok(())
}

/// Bits per code of a metal-marlin format.
fn code_bits(format: QuantFormat) -> u32 {
    match format {
        QuantFormat::Int(i) => i.bits.bits(),
        QuantFormat::Fp8 => 8,
        _ => 4,
    }
}

/// Write the `geo.n` codes `c` into the code area of a zeroed block.
fn pack_codes(format: QuantFormat, geo: &BlockGeom, c: &[u8], blk: &mut [u8]) {
    let n = geo.n;
    match code_bits(format) {
        8 => blk[..n].copy_from_slice(c),
        4 => {
            for (b, p) in blk.iter_mut().zip(c.chunks_exact(2)) {
                *b = (p[0] & 15) | ((p[1] & 15) << 4);
            }
        }
        2 => put2(c, blk),
        _ => {
            put2(c, blk);
            for (b, p) in blk[n / 4..n / 4 + n / 8].iter_mut().zip(c.chunks_exact(8)) {
                *b = p
                    .iter()
                    .enumerate()
                    .fold(0u8, |b, (k, &q)| b | (((q >> 2) & 1) << k));
            }
        }
    }
}

/// Four 2-bit codes per byte (low two bits of each code), element 4i+k at bits 2k.
fn put2(c: &[u8], blk: &mut [u8]) {
    for (b, p) in blk.iter_mut().zip(c.chunks_exact(4)) {
        *b = p
            .iter()
            .enumerate()
            .fold(0u8, |b, (k, &q)| b | ((q & 3) << (2 * k)));
    }
}

/// Read the `geo.n` codes of one block into `c`.
pub fn unpack_codes(format: QuantFormat, geo: &BlockGeom, blk: &[u8], c: &mut [u8]) {
    let n = geo.n;
    match code_bits(format) {
        8 => c[..n].copy_from_slice(&blk[..n]),
        4 => {
            for (p, &b) in c[..n].chunks_exact_mut(2).zip(blk) {
                p[0] = b & 15;
                p[1] = b >> 4;
            }
        }
        2 => get2(blk, &mut c[..n]),
        _ => {
            get2(blk, &mut c[..n]);
            for (p, &b) in c[..n].chunks_exact_mut(8).zip(&blk[n / 4..]) {
                for (k, q) in p.iter_mut().enumerate() {
                    *q |= ((b >> k) & 1) << 2;
                }
            }
        }
    }
}

fn get2(blk: &[u8], c: &mut [u8]) {
    for (p, &b) in c.chunks_exact_mut(4).zip(blk) {
        for (k, q) in p.iter_mut().enumerate() {
            *q = (b >> (2 * k)) & 3;
        }
    }
}

/// Read the `geo.groups` parameters of one block into `ps` and return nvfp4's tensor scale
/// (1.0 for other formats).
pub fn unpack_params(
    format: QuantFormat,
    geo: &BlockGeom,
    blk: &[u8],
    ps: &mut [GroupParams],
) -> f32 {
    for (k, p) in ps[..geo.groups].iter_mut().enumerate() {
        let b = &blk[geo.scales_at + k * geo.scale_bytes..];
        p.scale = match format {
            QuantFormat::Nvfp4 => e4m3_to_f32(b[0]),
            QuantFormat::Fp8 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            _ => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        };
        p.zero = match format {
            QuantFormat::Int(i) if i.zeros => blk[geo.zeros_at + k],
            _ => 0,
        };
    }
    if format == QuantFormat::Nvfp4 {
        let g = &blk[geo.global_at..geo.global_at + 4];
        f32::from_le_bytes([g[0], g[1], g[2], g[3]])
    } else {
        1.0
    }
}

/// Unpack one row into codes and params (inverse of [`pack_row`]); returns nvfp4's tensor
/// scale (1.0 elsewhere).
pub fn unpack_row(
    format: QuantFormat,
    src: &[u8],
    codes: &mut [u8],
    params: &mut [GroupParams],
) -> Result<f32> {
    check_row(format, codes.len(), params.len(), src.len())?;
    if format == QuantFormat::MXFP4 {
        for ((blk, c), p) in src
            .chunks_exact(MXFP4_BLOCK_BYTES)
            .zip(codes.chunks_exact_mut(32))
            .zip(params.iter_mut())
        {
            *p = GroupParams {
                scale: e8m0_to_f32(blk[0]),
                zero: 0,
            };
            for j in 0..16 {
                c[j] = blk[1 + j] & 15;
                c[j + 16] = blk[1 + j] >> 4;
            }
        }
        return Ok(1.0);
    }
    let (mut at, mut e, mut gi, mut global) = (0, 0, 0, 1.0);
    for geo in row_blocks(format, codes.len()) {
        let blk = &src[at..at + geo.bytes];
        unpack_codes(format, &geo, blk, &mut codes[e..e + geo.n]);
        global = unpack_params(format, &geo, blk, &mut params[gi..gi + geo.groups]);
        at += geo.bytes;
        e += geo.n;
        gi += geo.groups;
    }
    Ok(global)
}

/// Dequantize one row of a metal-marlin format (sizes checked by the caller).
pub fn dequant_row(format: QuantFormat, src: &[u8], y: &mut [f32]) {
    let mut c = [0u8; 256];
    let mut ps = [GroupParams {
        scale: 0.0,
        zero: 0,
    }; 16];
    let (mut at, mut e) = (0, 0);
    for geo in row_blocks(format, y.len()) {
        let blk = &src[at..at + geo.bytes];
        unpack_codes(format, &geo, blk, &mut c);
        let global = unpack_params(format, &geo, blk, &mut ps);
        for (j, v) in y[e..e + geo.n].iter_mut().enumerate() {
            *v = decode(format, c[j], ps[j / geo.group], global);
        }
        at += geo.bytes;
        e += geo.n;
    }
}
