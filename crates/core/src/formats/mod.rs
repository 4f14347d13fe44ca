//! Reference (scalar, bit-exact) dequantization and reference quantizers for every GGML block
//! format, one module per family. Per-block helpers are public so kernels can reuse them.

pub mod fp;
pub mod iq;
pub mod kquants;
pub mod kquants_quant;
pub mod legacy;
pub mod legacy_quant;
pub mod marlin;
pub mod marlin_rtn;
pub mod minifloat;
pub mod trellis;
pub mod trellis_code;

use std::sync::Arc;

use crate::{Error, QTensor, QuantFormat, Result, TensorData};

pub use fp::{
    bf16_to_f32, dequant_mxfp4, e8m0_to_f32, e8m0_to_f32_half, f16_to_f32, f32_to_bf16, f32_to_f16,
    quant_mxfp4, E2M1_TABLE, MXFP4_KVALUES,
};
pub use iq::{
    dequant_iq4_nl, dequant_iq4_xs, iq4_nl_best_index, iq4xs_scale, quant_iq4_nl, quant_iq4_xs,
    IQ4_NL_TABLE,
};
pub use kquants::{
    dequant_q2_k, dequant_q3_k, dequant_q4_k, dequant_q5_k, dequant_q6_k, dequant_q8_k,
    q3k_pack_scales, q3k_scales, q4k_pack_scales, q4k_scale_min, q6k_code, q8k_bsums,
};
pub use kquants_quant::{quant_q2_k, quant_q3_k, quant_q4_k, quant_q5_k, quant_q6_k, quant_q8_k};
pub use legacy::{
    dequant_q4_0, dequant_q4_1, dequant_q5_0, dequant_q5_1, dequant_q8_0, dequant_q8_1, q5_codes,
};
pub use legacy_quant::{quant_q4_0, quant_q4_1, quant_q5_0, quant_q5_1, quant_q8_0, quant_q8_1};
pub use marlin::{decode, nearest, pack_row, scale_group, unpack_row, GroupParams};
pub use marlin_rtn::{finite_amax, nvfp4_global, quantize_row_rtn, search_params};
pub use minifloat::{e4m3_to_f32, f32_to_e2m1, f32_to_e4m3};

/// Check that `n` elements of `format` occupy exactly `bytes` bytes.
fn check_sizes(format: QuantFormat, n: usize, bytes: usize) -> Result<()> {
    let need = format.row_bytes(n)?;
    if bytes != need {
        return Err(Error::Shape(format!(
            "{format}: {n} elements need {need} bytes, got {bytes}"
        )));
    }
    Ok(())
}

/// Run a block dequantizer over whole blocks (sizes already checked).
#[inline]
fn dq<const B: usize, const E: usize>(src: &[u8], dst: &mut [f32], f: fn(&[u8; B], &mut [f32; E])) {
    for (s, d) in src
        .as_chunks::<B>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<E>().0)
    {
        f(s, d);
    }
}

/// Run a block quantizer over whole blocks (sizes already checked).
#[inline]
fn qz<const B: usize, const E: usize>(src: &[f32], dst: &mut [u8], f: fn(&[f32; E], &mut [u8; B])) {
    for (s, d) in src
        .as_chunks::<E>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<B>().0)
    {
        f(s, d);
    }
}

/// Dequantize packed `src` (whole blocks) into `dst`; `dst.len()` elements are decoded.
/// Errors when `dst.len()` is not a whole number of blocks or `src` has the wrong length.
/// metal-marlin formats take exactly one row (rows may end in a tail block).
pub fn dequantize(format: QuantFormat, src: &[u8], dst: &mut [f32]) -> Result<()> {
    check_sizes(format, dst.len(), src.len())?;
    match format {
        QuantFormat::F32 => {
            for (y, b) in dst.iter_mut().zip(src.as_chunks::<4>().0) {
                *y = f32::from_le_bytes(*b);
            }
        }
        QuantFormat::F16 => {
            for (y, b) in dst.iter_mut().zip(src.as_chunks::<2>().0) {
                *y = f16_to_f32(u16::from_le_bytes(*b));
            }
        }
        QuantFormat::BF16 => {
            for (y, b) in dst.iter_mut().zip(src.as_chunks::<2>().0) {
                *y = bf16_to_f32(u16::from_le_bytes(*b));
            }
        }
        QuantFormat::Q4_0 => dq(src, dst, dequant_q4_0),
        QuantFormat::Q4_1 => dq(src, dst, dequant_q4_1),
        QuantFormat::Q5_0 => dq(src, dst, dequant_q5_0),
        QuantFormat::Q5_1 => dq(src, dst, dequant_q5_1),
        QuantFormat::Q8_0 => dq(src, dst, dequant_q8_0),
        QuantFormat::Q8_1 => dq(src, dst, dequant_q8_1),
        QuantFormat::Q2_K => dq(src, dst, dequant_q2_k),
        QuantFormat::Q3_K => dq(src, dst, dequant_q3_k),
        QuantFormat::Q4_K => dq(src, dst, dequant_q4_k),
        QuantFormat::Q5_K => dq(src, dst, dequant_q5_k),
        QuantFormat::Q6_K => dq(src, dst, dequant_q6_k),
        QuantFormat::Q8_K => dq(src, dst, dequant_q8_k),
        QuantFormat::IQ4_NL => dq(src, dst, dequant_iq4_nl),
        QuantFormat::IQ4_XS => dq(src, dst, dequant_iq4_xs),
        QuantFormat::MXFP4 => dq(src, dst, dequant_mxfp4),
        QuantFormat::Fp4(_) | QuantFormat::Int(_) | QuantFormat::Nvfp4 | QuantFormat::Fp8 => {
            marlin::dequant_row(format, src, dst)
        }
        QuantFormat::Trellis(_) => {
            return Err(Error::Unsupported(
                format.name(),
                "formats::dequantize (use formats::trellis::dequantize)",
            ))
        }
    }
    Ok(())
}

/// Quantize `src` (whole blocks) into packed `dst` with the reference quantizer of `format`.
/// Q8_0, Q8_1, Q8_K, Q4_0..Q5_1, MXFP4, F16 and BF16 follow ggml's reference rules exactly;
/// the other K-quants and IQ4 formats use simpler (accurate, not ggml-identical) schemes.
/// metal-marlin formats use RTN with a clipping search; nvfp4's tensor scale comes from the
/// largest |value| of all of `src`.
pub fn quantize(format: QuantFormat, src: &[f32], dst: &mut [u8]) -> Result<()> {
    check_sizes(format, src.len(), dst.len())?;
    match format {
        QuantFormat::F32 => {
            for (b, x) in dst.as_chunks_mut::<4>().0.iter_mut().zip(src) {
                *b = x.to_le_bytes();
            }
        }
        QuantFormat::F16 => {
            for (b, &x) in dst.as_chunks_mut::<2>().0.iter_mut().zip(src) {
                *b = f32_to_f16(x).to_le_bytes();
            }
        }
        QuantFormat::BF16 => {
            for (b, &x) in dst.as_chunks_mut::<2>().0.iter_mut().zip(src) {
                *b = f32_to_bf16(x).to_le_bytes();
            }
        }
        QuantFormat::Q4_0 => qz(src, dst, quant_q4_0),
        QuantFormat::Q4_1 => qz(src, dst, quant_q4_1),
        QuantFormat::Q5_0 => qz(src, dst, quant_q5_0),
        QuantFormat::Q5_1 => qz(src, dst, quant_q5_1),
        QuantFormat::Q8_0 => qz(src, dst, quant_q8_0),
        QuantFormat::Q8_1 => qz(src, dst, quant_q8_1),
        QuantFormat::Q2_K => qz(src, dst, quant_q2_k),
        QuantFormat::Q3_K => qz(src, dst, quant_q3_k),
        QuantFormat::Q4_K => qz(src, dst, quant_q4_k),
        QuantFormat::Q5_K => qz(src, dst, quant_q5_k),
        QuantFormat::Q6_K => qz(src, dst, quant_q6_k),
        QuantFormat::Q8_K => qz(src, dst, quant_q8_k),
        QuantFormat::IQ4_NL => qz(src, dst, quant_iq4_nl),
        QuantFormat::IQ4_XS => qz(src, dst, quant_iq4_xs),
        QuantFormat::MXFP4 => qz(src, dst, quant_mxfp4),
        QuantFormat::Fp4(_) | QuantFormat::Int(_) | QuantFormat::Nvfp4 | QuantFormat::Fp8 => {
            quantize_row_rtn(format, src, nvfp4_global(finite_amax(src)), dst)?
        }
        QuantFormat::Trellis(_) => {
            return Err(Error::Unsupported(
                format.name(),
                "the reference quantizer (use the trellis quantizer)",
            ))
        }
    }
    Ok(())
}

/// Quantize a row-major f32 tensor (`shape` outermost first; blocks run along the last
/// dimension, which must be a whole number of blocks) into an owned [`QTensor`].
pub fn quantize_tensor(format: QuantFormat, shape: &[usize], values: &[f32]) -> Result<QTensor> {
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Overflow(format!("{shape:?}")))?;
    if numel != values.len() {
        return Err(Error::Shape(format!(
            "shape {shape:?} has {numel} elements, got {} values",
            values.len()
        )));
    }
    if format.is_trellis() {
        return Err(Error::Unsupported(
            format.name(),
            "quantize_tensor (use the trellis quantizer)",
        ));
    }
    let mut bytes = vec![0u8; QTensor::nbytes_for(format, shape)?];
    if format.is_marlin() {
        // Row by row (tail blocks); nvfp4's tensor scale covers the whole tensor.
        let cols = shape.last().copied().unwrap_or(0).max(1);
        let rb = format.row_bytes(cols)?;
        let global = nvfp4_global(finite_amax(values));
        for (x, out) in values
            .chunks_exact(cols)
            .zip(bytes.chunks_exact_mut(rb.max(1)))
        {
            quantize_row_rtn(format, x, global, out)?;
        }
    } else {
        quantize(format, values, &mut bytes)?;
    }
    QTensor::new(format, shape.to_vec(), TensorData::Owned(Arc::new(bytes)))
}
