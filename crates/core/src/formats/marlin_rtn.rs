//! Round-to-nearest quantization of the metal-marlin formats with a format-aware scale
//! search: every group tries a few clipping ratios of its range (scales rounded to the
//! stored precision first) and keeps the one with the lowest (optionally weighted) squared
//! error. GPTQ reuses [`search_params`] and [`super::marlin::nearest`].

use super::fp::{f16_to_f32, f32_to_f16};
use super::marlin::{decode, nearest, pack_row, scale_group, GroupParams};
use super::minifloat::{e4m3_to_f32, f32_to_e4m3, E4M3_MAX};
use crate::{Error, QuantFormat, Result};

/// Clipping ratios tried by the scale search.
const CLIP: [f32; 12] = [
    1.0, 0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79, 0.76, 0.72, 0.68, 0.64,
];

/// f32 → the nearest stored f16 value, finite (overflow clamps to ±65504).
#[inline]
fn round_f16(s: f32) -> f32 {
    f16_to_f32(f32_to_f16(s.clamp(-65504.0, 65504.0)))
}

/// nvfp4's tensor scale for a tensor (or row) whose largest |value| is `amax`: the decode
/// multiplier that lets the largest block scale reach E4M3's 448.
pub fn nvfp4_global(amax: f32) -> f32 {
    if amax > 0.0 && amax.is_finite() {
        amax / (E4M3_MAX * 6.0)
    } else {
        1.0
    }
}

/// Largest finite |x| of a slice (NaN and infinities ignored).
pub fn finite_amax(xs: &[f32]) -> f32 {
    xs.iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, v| m.max(v.abs()))
}

/// Weighted squared error of quantizing `xs` with `p`.
fn group_error(format: QuantFormat, xs: &[f32], w: Option<&[f32]>, p: GroupParams, g: f32) -> f32 {
    let mut e = 0f32;
    for (i, &x) in xs.iter().enumerate() {
        let d = decode(format, nearest(format, x, p, g), p, g) - x;
        let d2 = if d.is_finite() { d * d } else { f32::MAX };
        e += d2 * w.map_or(1.0, |w| w[i]);
    }
    e
}

/// The candidate parameters of a group for clipping ratio `r`.
fn candidates(format: QuantFormat, xs: &[f32], r: f32, global: f32, out: &mut Vec<GroupParams>) {
    let fin = || xs.iter().copied().filter(|v| v.is_finite());
    let amax = finite_amax(xs);
    let p = |scale| GroupParams { scale, zero: 0 };
    match format {
        QuantFormat::Fp4(_) => out.push(p(round_f16(r * amax / 6.0))),
        QuantFormat::Fp8 => out.push(p(r * amax / E4M3_MAX)),
        QuantFormat::Nvfp4 => {
            let code = f32_to_e4m3(r * amax / 6.0 / global);
            out.push(p(e4m3_to_f32(code & 0x7f)));
            if r == 1.0 && code < 0x7e {
                out.push(p(e4m3_to_f32(code + 1)));
            }
        }
        QuantFormat::MXFP4 => {
            let a = r * amax;
            if a > 0.0 {
                let e = (a.log2().floor() - 2.0).clamp(-126.0, 127.0);
                out.push(p(2f32.powi(e as i32)));
                if r == 1.0 && e < 127.0 {
                    out.push(p(2f32.powi(e as i32 + 1)));
                }
            } else {
                out.push(p(2f32.powi(-126)));
            }
        }
        QuantFormat::Int(i) if i.zeros => {
            let maxq = ((1u32 << i.bits.bits()) - 1) as f32;
            let lo = r * fin().fold(0f32, f32::min);
            let hi = r * fin().fold(0f32, f32::max);
            let s = round_f16((hi - lo) / maxq);
            let zero = if s > 0.0 {
                (-lo / s).round().clamp(0.0, maxq) as u8
            } else {
                0
            };
            out.push(GroupParams { scale: s, zero });
        }
        QuantFormat::Int(i) => {
            // The largest-|x| element maps to the extreme code −2^(b−1) (negative scale when it
            // is positive, as in Q4_0), or to the other extreme 2^(b−1) − 1.
            let half = (1u32 << (i.bits.bits() - 1)) as f32;
            let m = fin().fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            out.push(p(round_f16(-r * m / half)));
            out.push(p(round_f16(r * m / (half - 1.0).max(1.0))));
        }
        _ => {}
    }
}

/// The best parameters for one group `xs` (weights `w` scale each element's squared error).
pub fn search_params(
    format: QuantFormat,
    xs: &[f32],
    w: Option<&[f32]>,
    global: f32,
) -> GroupParams {
    let mut cands = Vec::with_capacity(2 * CLIP.len());
    let ratios: &[f32] = match format {
        QuantFormat::Fp8 => &CLIP[..4],
        _ => &CLIP,
    };
    for &r in ratios {
        candidates(format, xs, r, global, &mut cands);
    }
    let mut best = GroupParams {
        scale: 0.0,
        zero: 0,
    };
    let mut best_err = f32::INFINITY;
    for p in cands {
        let e = group_error(format, xs, w, p, global);
        if e < best_err {
            best = p;
            best_err = e;
        }
    }
    best
}

/// RTN-quantize one row of `format` into `out` (the row may end in a tail block). nvfp4 uses `global` as its
/// tensor scale (see [`nvfp4_global`]).
pub fn quantize_row_rtn(format: QuantFormat, x: &[f32], global: f32, out: &mut [u8]) -> Result<()> {
    let g = scale_group(format).ok_or(Error::Unsupported(format.name(), "marlin rtn"))?;
    format.row_bytes(x.len())?;
    let mut codes = vec![0u8; x.len()];
    let mut params = Vec::with_capacity(x.len().div_ceil(g));
    for (xs, cs) in x.chunks(g).zip(codes.chunks_mut(g)) {
        let p = search_params(format, xs, None, global);
        for (c, &v) in cs.iter_mut().zip(xs) {
            *c = nearest(format, v, p, global);
        }
        params.push(p);
    }
    pack_row(format, &codes, &params, global, out)
}
