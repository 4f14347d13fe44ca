//! RMSNorm over rows: `x / sqrt(mean(x²) + eps) · w`, f32 accumulation.

use rayon::prelude::*;

use super::PAR_MIN_ELEMS;

/// RMSNorm of each row of `x` (row length `w.len()`) into `out`; `w` is applied as given.
/// `x.len()` must be a multiple of `w.len()` and equal `out.len()`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert!(!w.is_empty() && x.len().is_multiple_of(w.len()) && x.len() == out.len());
    if w.is_empty() {
        return;
    }
    let d = w.len();
    let row = |(xr, or): (&[f32], &mut [f32])| {
        let inv = inv_rms(xr, eps);
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * inv * g;
        }
    };
    if x.len() >= PAR_MIN_ELEMS && x.len() / d > 1 {
        x.par_chunks_exact(d)
            .zip(out.par_chunks_exact_mut(d))
            .for_each(row);
    } else {
        x.chunks_exact(d).zip(out.chunks_exact_mut(d)).for_each(row);
    }
}

/// RMSNorm of each row of `x` (row length `w.len()`) in place.
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    debug_assert!(!w.is_empty() && x.len().is_multiple_of(w.len()));
    if w.is_empty() {
        return;
    }
    let d = w.len();
    let row = |xr: &mut [f32]| {
        let inv = inv_rms(xr, eps);
        for (v, &g) in xr.iter_mut().zip(w) {
            *v *= inv * g;
        }
    };
    if x.len() >= PAR_MIN_ELEMS && x.len() / d > 1 {
        x.par_chunks_exact_mut(d).for_each(row);
    } else {
        x.chunks_exact_mut(d).for_each(row);
    }
}

/// `1 / sqrt(mean(x²) + eps)`, summing in eight lanes so the loop vectorizes.
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v * v;
        }
    }
    let sum: f32 = lanes.iter().sum::<f32>() + tail.iter().map(|&v| v * v).sum::<f32>();
    1.0 / (sum / x.len().max(1) as f32 + eps).sqrt()
}
