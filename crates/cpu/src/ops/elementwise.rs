//! Element-wise ops: residual add, SiLU/GELU gating, scaling and softmax.

use rayon::prelude::*;

use super::{PAR_CHUNK, PAR_MIN_ELEMS};

/// Applies `f(dst[i], src[i])` over two equal-length slices, in parallel when large.
fn zip_apply(dst: &mut [f32], src: &[f32], f: impl Fn(&mut f32, f32) + Sync) {
    debug_assert_eq!(dst.len(), src.len());
    let chunk = |(d, s): (&mut [f32], &[f32])| {
        for (a, &b) in d.iter_mut().zip(s) {
            f(a, b);
        }
    };
    if dst.len() >= PAR_MIN_ELEMS {
        dst.par_chunks_mut(PAR_CHUNK)
            .zip(src.par_chunks(PAR_CHUNK))
            .for_each(chunk);
    } else {
        chunk((dst, src));
    }
}

/// `dst += src` (equal lengths).
pub fn add_inplace(dst: &mut [f32], src: &[f32]) {
    zip_apply(dst, src, |a, b| *a += b);
}

/// SiLU: `x · sigmoid(x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
}

/// SwiGLU gate: `gate ← silu(gate) · up` (equal lengths).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    zip_apply(gate, up, |g, u| *g = silu(*g) * u);
}

/// GeGLU gate: `gate ← gelu_tanh(gate) · up` (equal lengths).
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    zip_apply(gate, up, |g, u| *g = gelu_tanh(*g) * u);
}

/// `x *= s`.
pub fn scale_inplace(x: &mut [f32], s: f32) {
    if x.len() >= PAR_MIN_ELEMS {
        x.par_chunks_mut(PAR_CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v *= s));
    } else {
        x.iter_mut().for_each(|v| *v *= s);
    }
}

/// Softmax of one row in place (max-subtracted). A row of all `-inf` becomes all zeros.
pub fn softmax_inplace(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// Softmax of each row of `x` (row length `cols`) in place, rows in parallel when large.
pub fn softmax_rows_inplace(x: &mut [f32], cols: usize) {
    debug_assert!(cols > 0 && x.len().is_multiple_of(cols));
    if cols == 0 {
        return;
    }
    if x.len() >= PAR_MIN_ELEMS && x.len() / cols > 1 {
        x.par_chunks_exact_mut(cols).for_each(softmax_inplace);
    } else {
        x.chunks_exact_mut(cols).for_each(softmax_inplace);
    }
}
