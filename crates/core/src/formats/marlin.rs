//! Pack, unpack and decode the metal-marlin formats (layouts in [`crate::marlin_format`]),
//! row by row: a row is its element codes plus one [`GroupParams`] per scale group. GGML
//! MXFP4 is served by the same row API (E2M1 codes, E8M0 scale per 32) so the quantizers
//! can target it too.

use super::fp::{e8m0_to_f32, f16_to_f32, f32_to_f16, E2M1_TABLE, MXFP4_BLOCK_BYTES};
use super::minifloat::{e4m3_to_f32, f32_to_e2m1, f32_to_e4m3};
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

/// Check a row's sizes: `cols` elements, `codes`, `params` and packed `bytes`.
fn check_row(format: QuantFormat, codes: usize, params: usize, bytes: usize) -> Result<usize> {
    let g = scale_group(format).ok_or(Error::Unsupported(format.name(), "marlin row codec"))?;
    let need = format.row_bytes(codes)?;
    if params != codes / g || bytes != need {
        return Err(Error::Shape(format!(
            "{format}: {codes} codes need {} params and {need} bytes, got {params} and {bytes}",
            codes / g
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

/// Byte offsets inside one 256-element block: (scales, scale width, zeros).
fn meta_offsets(format: QuantFormat) -> (usize, usize, usize) {
    match format {
        QuantFormat::Fp4(_) => (128, 2, 0),
        QuantFormat::Nvfp4 => (128, 1, 0),
        QuantFormat::Fp8 => (256, 4, 0),
        QuantFormat::Int(i) => {
            let s = i.code_bytes();
            (s, 2, s + 2 * i.groups())
        }
        _ => (0, 1, 0),
    }
}

/// Pack one row: `codes[cols]`, `params[cols / scale_group]`; nvfp4 stores `global` in
/// every block. Scales are stored in the format's precision (pass already-rounded values to
/// get an exact round trip).
pub fn pack_row(
    format: QuantFormat,
    codes: &[u8],
    params: &[GroupParams],
    global: f32,
    out: &mut [u8],
) -> Result<()> {
    let g = check_row(format, codes.len(), params.len(), out.len())?;
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
    let (s_at, s_w, z_at) = meta_offsets(format);
    let bb = format.block_bytes();
    let per = 256 / g;
    for ((blk, c), ps) in out
        .chunks_exact_mut(bb)
        .zip(codes.chunks_exact(256))
        .zip(params.chunks_exact(per))
    {
        blk.fill(0);
        pack_codes(format, c, blk);
        for (k, p) in ps.iter().enumerate() {
            put_scale(format, p.scale, &mut blk[s_at + k * s_w..]);
            if let QuantFormat::Int(i) = format {
                if i.zeros {
                    blk[z_at + k] = p.zero;
                }
            }
        }
        if format == QuantFormat::Nvfp4 {
            blk[144..148].copy_from_slice(&global.to_le_bytes());
        }
    }
    Ok(())
}

/// Write 256 codes into the code area of a zeroed block.
fn pack_codes(format: QuantFormat, c: &[u8], blk: &mut [u8]) {
    let bits = match format {
        QuantFormat::Int(i) => i.bits.bits(),
        QuantFormat::Fp8 => 8,
        _ => 4,
    };
    match bits {
        8 => blk[..256].copy_from_slice(&c[..256]),
        4 => {
            for i in 0..128 {
                blk[i] = (c[2 * i] & 15) | ((c[2 * i + 1] & 15) << 4);
            }
        }
        2 => put2(c, blk),
        _ => {
            let low: Vec<u8> = c.iter().map(|&q| q & 3).collect();
            put2(&low, blk);
            for i in 0..32 {
                let mut b = 0u8;
                for k in 0..8 {
                    b |= ((c[8 * i + k] >> 2) & 1) << k;
                }
                blk[64 + i] = b;
            }
        }
    }
}

/// Four 2-bit codes per byte, element 4i+k at bits 2k.
fn put2(c: &[u8], blk: &mut [u8]) {
    for i in 0..64 {
        let mut b = 0u8;
        for k in 0..4 {
            b |= (c[4 * i + k] & 3) << (2 * k);
        }
        blk[i] = b;
    }
}

/// Read the 256 codes of one block.
pub fn unpack_codes(format: QuantFormat, blk: &[u8], c: &mut [u8; 256]) {
    let bits = match format {
        QuantFormat::Int(i) => i.bits.bits(),
        QuantFormat::Fp8 => 8,
        _ => 4,
    };
    match bits {
        8 => c.copy_from_slice(&blk[..256]),
        4 => {
            for i in 0..128 {
                c[2 * i] = blk[i] & 15;
                c[2 * i + 1] = blk[i] >> 4;
            }
        }
        2 => get2(blk, c),
        _ => {
            get2(blk, c);
            for i in 0..32 {
                let b = blk[64 + i];
                for k in 0..8 {
                    c[8 * i + k] |= ((b >> k) & 1) << 2;
                }
            }
        }
    }
}

fn get2(blk: &[u8], c: &mut [u8; 256]) {
    for i in 0..64 {
        let b = blk[i];
        for k in 0..4 {
            c[4 * i + k] = (b >> (2 * k)) & 3;
        }
    }
}

/// Read the parameters of one 256-element block into `ps` (`256 / scale_group` entries) and
/// return nvfp4's tensor scale (1.0 for other formats).
pub fn unpack_params(format: QuantFormat, blk: &[u8], ps: &mut [GroupParams]) -> f32 {
    let (s_at, s_w, z_at) = meta_offsets(format);
    for (k, p) in ps.iter_mut().enumerate() {
        let b = &blk[s_at + k * s_w..];
        p.scale = match format {
            QuantFormat::Nvfp4 => e4m3_to_f32(b[0]),
            QuantFormat::Fp8 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            _ => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        };
        p.zero = match format {
            QuantFormat::Int(i) if i.zeros => blk[z_at + k],
            _ => 0,
        };
    }
    if format == QuantFormat::Nvfp4 {
        f32::from_le_bytes([blk[144], blk[145], blk[146], blk[147]])
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
    let g = check_row(format, codes.len(), params.len(), src.len())?;
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
    let mut global = 1.0;
    let mut c = [0u8; 256];
    for ((blk, out), ps) in src
        .chunks_exact(format.block_bytes())
        .zip(codes.chunks_exact_mut(256))
        .zip(params.chunks_exact_mut(256 / g))
    {
        unpack_codes(format, blk, &mut c);
        out.copy_from_slice(&c);
        global = unpack_params(format, blk, ps);
    }
    Ok(global)
}

/// Dequantize one 256-element block of a metal-marlin format.
pub fn dequant_block(format: QuantFormat, blk: &[u8], y: &mut [f32]) {
    let g = scale_group(format).unwrap_or(256);
    let mut c = [0u8; 256];
    let mut ps = [GroupParams {
        scale: 0.0,
        zero: 0,
    }; 16];
    unpack_codes(format, blk, &mut c);
    let n = 256 / g;
    let global = unpack_params(format, blk, &mut ps[..n]);
    for (k, p) in ps[..n].iter().enumerate() {
        for j in k * g..(k + 1) * g {
            y[j] = decode(format, c[j], *p, global);
        }
    }
}
