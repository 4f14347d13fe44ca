//! Random trellis weights for synthetic models: random tile bitstreams (every state equally
//! likely, no Viterbi run) and random ±1 sign vectors, scaled so the weight RMS is
//! [`TARGET_RMS`]: `W = diag(svh)·H·Q·H·diag(suh)` with `|suh| = 1`, `|svh| = TARGET_RMS/σ`
//! (σ = the codebook's standard deviation over all 2^16 states; H is orthogonal).

use std::sync::{Arc, LazyLock};

use marlin_core::formats::trellis::{decode_value, layout};
use marlin_core::{Codebook, QTensor, QuantFormat, TensorData, TrellisFormat};
use rayon::prelude::*;

use super::fill::{mix, Rng, TARGET_RMS};
use crate::Result;

/// Bytes each parallel task fills.
const CHUNK_BYTES: usize = 1 << 18;

/// Standard deviation of each codebook over all 2^16 states, in [`Codebook::ALL`] order.
static SIGMA: LazyLock<[f64; 3]> = LazyLock::new(|| {
    Codebook::ALL.map(|cb| {
        let n = f64::from(1u32 << 16);
        let (mut s, mut s2) = (0f64, 0f64);
        for st in 0..=u16::MAX {
            let v = f64::from(decode_value(cb, st));
            s += v;
            s2 += v * v;
        }
        (s2 / n - (s / n).powi(2)).sqrt()
    })
});

/// The standard deviation of `cb`'s values (uniform states).
pub fn codebook_sigma(cb: Codebook) -> f64 {
    let i = Codebook::ALL.iter().position(|&c| c == cb).unwrap_or(0);
    SIGMA[i]
}

/// A `[rows, cols]` trellis tensor of random tiles and signs, deterministic in `seed`.
/// Errors when `rows` or `cols` is not a multiple of 16.
pub fn random_trellis(f: TrellisFormat, rows: usize, cols: usize, seed: u64) -> Result<QTensor> {
    let lay = layout(f, rows, cols)?;
    let mut buf = vec![0u8; lay.bytes];
    let (tiles, scales) = buf.split_at_mut(lay.suh_at);
    tiles
        .par_chunks_mut(CHUNK_BYTES)
        .enumerate()
        .for_each(|(i, c)| Rng::new(seed ^ mix(i as u64)).fill(c));
    let out_scale = (f64::from(TARGET_RMS) / codebook_sigma(f.codebook)) as f32;
    let mut rng = Rng::new(seed ^ mix(u64::MAX));
    let mut word = 0u64;
    for (i, v) in scales.chunks_exact_mut(4).enumerate() {
        if i % 64 == 0 {
            word = rng.next_u64();
        }
        let sign = if word & 1 == 1 { -1.0f32 } else { 1.0 };
        word >>= 1;
        let mag = if i < cols { 1.0 } else { out_scale };
        v.copy_from_slice(&(sign * mag).to_le_bytes());
    }
    Ok(QTensor::new(
        QuantFormat::Trellis(f),
        vec![rows, cols],
        TensorData::Owned(Arc::new(buf)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_have_the_target_rms_and_random_signs() {
        for f in TrellisFormat::all() {
            let t = random_trellis(f, 64, 128, 5).unwrap();
            let w = t.to_f32().unwrap();
            let rms =
                (w.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            assert!(
                (rms / f64::from(TARGET_RMS) - 1.0).abs() < 0.1,
                "{f:?}: rms {rms}"
            );
            let mean = w.iter().map(|x| f64::from(*x)).sum::<f64>() / w.len() as f64;
            assert!(
                mean.abs() < 0.1 * f64::from(TARGET_RMS),
                "{f:?}: mean {mean}"
            );
            // Same seed, same bytes; another seed differs.
            assert_eq!(random_trellis(f, 64, 128, 5).unwrap().bytes(), t.bytes());
            assert_ne!(random_trellis(f, 64, 128, 6).unwrap().bytes(), t.bytes());
        }
        assert!((codebook_sigma(Codebook::Inst3) - 1.2437).abs() < 2e-3);
        let f = TrellisFormat::new(3, Codebook::Inst3).unwrap();
        assert!(random_trellis(f, 24, 128, 1).is_err());
    }
}
