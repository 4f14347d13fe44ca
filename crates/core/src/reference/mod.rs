//! The f32 reference oracle: plain, obviously-correct versions of every op, accumulating in
//! f64. Backends are tested against these; speed does not matter here.
//!
//! These functions are test oracles: on mismatched buffer sizes they panic with a message
//! (documented per function) instead of returning errors, so parity tests stay short.

mod attention;

pub use attention::attention;

use crate::rope::{RopeConfig, RopeMode};

/// `y = W x` for `n` vectors: `w` is `rows × cols` row-major, `x` is `n × cols`, the result is
/// `n × rows`.
///
/// # Panics
/// If `w.len() != rows·cols` or `x.len() != n·cols`.
pub fn matmul(w: &[f32], x: &[f32], rows: usize, cols: usize, n: usize) -> Vec<f32> {
    assert_eq!(
        w.len(),
        rows * cols,
        "reference::matmul: w is not rows×cols"
    );
    assert_eq!(x.len(), n * cols, "reference::matmul: x is not n×cols");
    let mut y = vec![0.0f32; n * rows];
    for j in 0..n {
        for r in 0..rows {
            let mut dot = 0.0f64;
            for c in 0..cols {
                dot += f64::from(w[r * cols + c]) * f64::from(x[j * cols + c]);
            }
            y[j * rows + r] = dot as f32;
        }
    }
    y
}

/// RMSNorm of each row of `x` (row length `w.len()`): `x / sqrt(mean(x²) + eps) · w`, with `w`
/// applied as given (Gemma's `1 + w` is already folded into GGUF weights).
///
/// # Panics
/// If `w` is empty or `x.len()` is not a multiple of `w.len()`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    assert!(
        !w.is_empty() && x.len().is_multiple_of(w.len()),
        "reference::rms_norm: x is not rows × w.len()"
    );
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(w.len()) {
        let ms: f64 = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / w.len() as f64;
        let inv = 1.0 / (ms + f64::from(eps)).sqrt();
        out.extend(
            row.iter()
                .zip(w)
                .map(|(&v, &g)| (f64::from(v) * inv * f64::from(g)) as f32),
        );
    }
    out
}

/// Softmax of one row (max-subtracted, f64 sums). An empty row gives an empty result.
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let max = x
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let exps: Vec<f64> = x.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// SiLU: `x · sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    let x = f64::from(x);
    (x / (1.0 + (-x).exp())) as f32
}

/// GELU, tanh approximation: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (Gemma's GeGLU).
pub fn gelu_tanh(x: f32) -> f32 {
    let x = f64::from(x);
    let c = (2.0 / std::f64::consts::PI).sqrt();
    (0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())) as f32
}

/// Rotates one token's `n_heads × head_dim` vector in place for position `pos`.
/// Pair `i` (of `cfg.n_rot/2`) is `(2i, 2i+1)` in `Normal` mode and `(i, i + n_rot/2)` in
/// `Neox` mode; angle `pos · inv_freq[i]`; dims past `n_rot` are untouched.
///
/// # Panics
/// If `x.len() != n_heads·head_dim` or `cfg.validate(head_dim)` fails.
pub fn rope(x: &mut [f32], n_heads: usize, head_dim: usize, pos: usize, cfg: &RopeConfig) {
    assert_eq!(
        x.len(),
        n_heads * head_dim,
        "reference::rope: x is not n_heads×head_dim"
    );
    let valid = cfg.validate(head_dim);
    assert!(valid.is_ok(), "reference::rope: {valid:?}");
    let half = cfg.n_rot / 2;
    let inv_freqs = cfg.inv_freqs();
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &f) in inv_freqs.iter().enumerate() {
            let (a, b) = match cfg.mode {
                RopeMode::Normal => (2 * i, 2 * i + 1),
                RopeMode::Neox => (i, i + half),
            };
            let theta = pos as f64 * f64::from(f);
            let (sin, cos) = theta.sin_cos();
            let (xa, xb) = (f64::from(head[a]), f64::from(head[b]));
            head[a] = (xa * cos - xb * sin) as f32;
            head[b] = (xa * sin + xb * cos) as f32;
        }
    }
}
