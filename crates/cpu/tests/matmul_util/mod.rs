//! Shared helpers of the matmul tests: random data, the f64 reference from dequantized
//! weights, and the error metric.

#![allow(dead_code)]

use std::sync::Arc;

use marlin_core::{formats, QTensor, QuantFormat, TensorData};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Tolerance (error metric below) for kernels with int8-quantized activations, for output
/// vectors of at least 16 values. Int8 activations alone cost ~0.5–0.7 % (32- or 256-element
/// blocks), so a handful of outputs can exceed 1 % by chance: shorter vectors get
/// [`TOL_INT8_FEW`] (an NMSE of 4e-4, near ggml's 5e-4 for mul_mat).
pub const TOL_INT8: f64 = 1e-2;
/// Tolerance for int8-activation outputs of fewer than 16 values.
pub const TOL_INT8_FEW: f64 = 2e-2;
/// Tolerance for float kernels and the dequantize fallback (f32 activations).
pub const TOL_F32: f64 = 1e-5;

/// Approximately normal values (sum of uniforms), deterministic per seed.
pub fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>() * 1.7)
        .collect()
}

/// Random weights of `format` built by the reference quantizer from gaussian values.
pub fn quantized(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> QTensor {
    let v = gaussian(rows * cols, seed);
    formats::quantize_tensor(format, &[rows, cols], &v).unwrap()
}

/// Random weights with random code bytes (every bit pattern) and sane scale fields.
pub fn random_blocks(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> QTensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = QTensor::nbytes_for(format, &[rows, cols]).unwrap();
    let mut bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
    let bb = format.block_bytes();
    // Offsets of the f16 scale fields in each block (random bits could be inf/NaN).
    let f16_fields: &[usize] = match format {
        QuantFormat::Q4_0 | QuantFormat::Q5_0 | QuantFormat::Q8_0 => &[0],
        QuantFormat::Q4_1 | QuantFormat::Q5_1 | QuantFormat::Q4_K | QuantFormat::Q5_K => &[0, 2],
        QuantFormat::Q6_K => &[208],
        _ => panic!("random_blocks: unsupported {format}"),
    };
    for blk in bytes.chunks_exact_mut(bb) {
        for &o in f16_fields {
            let v = half::f16::from_f32(rng.random::<f32>() * 0.02 - 0.01);
            blk[o..o + 2].copy_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    QTensor::new(format, vec![rows, cols], TensorData::Owned(Arc::new(bytes))).unwrap()
}

/// f64 reference: out[t·rows + r] = Σ_k W[r,k]·x[t·cols + k], W from the reference
/// dequantizer. Also returns the magnitude scale sqrt(Σ_{r,t} Σ_k (W x)²), the yardstick
/// of the error metric (robust when an output happens to be near zero).
pub fn reference(w: &QTensor, x: &[f32], n_tokens: usize) -> (Vec<f64>, f64) {
    let (rows, cols) = (w.shape[0], w.shape[1]);
    let wf = w.to_f32().unwrap();
    let mut out = vec![0f64; rows * n_tokens];
    let mut mag = 0f64;
    for t in 0..n_tokens {
        for r in 0..rows {
            let mut s = 0f64;
            for k in 0..cols {
                let p = wf[r * cols + k] as f64 * x[t * cols + k] as f64;
                s += p;
                mag += p * p;
            }
            out[t * rows + r] = s;
        }
    }
    (out, mag.sqrt())
}

/// Error metric: ‖out − ref‖₂ / max(‖ref‖₂, magnitude scale).
pub fn rel_err(out: &[f32], reference: &[f64], mag: f64) -> f64 {
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(&a, &b)| (a as f64 - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = reference.iter().map(|v| v * v).sum::<f64>().sqrt();
    diff / norm.max(mag).max(f64::MIN_POSITIVE)
}

/// The tolerance for `format` on its kernel path with `n_out` output values.
pub fn tolerance(format: QuantFormat, n_out: usize) -> f64 {
    use marlin_cpu::matmul::{has_fast_kernel, Isa};
    let int8 = if n_out >= 16 { TOL_INT8 } else { TOL_INT8_FEW };
    match format {
        QuantFormat::F32 | QuantFormat::F16 | QuantFormat::BF16 => TOL_F32,
        f if has_fast_kernel(Isa::Scalar, f) => int8,
        _ => TOL_F32,
    }
}
