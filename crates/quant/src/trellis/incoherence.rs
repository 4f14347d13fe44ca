//! Incoherence processing (QuIP#/EXL3 random Hadamard transform): random ±1 signs from a
//! stored seed and block Hadamards on both sides make the weights roughly i.i.d. Gaussian,
//! so one fixed codebook fits; the Hessian is transformed the same way.
//!
//! With signs `su` (k), `sv` (n), block Hadamards `H_k`, `H_n` and a global scale `g`, the
//! quantizer sees `W̃ = H_n·diag(sv)·W·diag(su)·H_k / g`. Since `H·H = I` and `s² = 1`,
//! `W = diag(sv·g)·H_n·W̃·H_k·diag(su)`: the format's `svh = sv·g`, `suh = su`. The proxy
//! loss is `tr(ΔW·H·ΔWᵀ) = g²·tr(ΔW̃·H̃·ΔW̃ᵀ)` with `H̃ = H_k·diag(su)·H·diag(su)·H_k`.

use marlin_core::formats::trellis::had_block;
use marlin_core::hadamard::{rotate, rotate_f64};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::{Error, Result};

/// The transform of one matrix: its signs, Hadamard blocks and global scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoherence {
    /// Input-side signs (k values, ±1).
    pub su: Vec<f32>,
    /// Output-side signs (n values, ±1).
    pub sv: Vec<f32>,
    /// Hadamard block along k / along n.
    pub had_k: usize,
    pub had_n: usize,
    /// Global scale `g` (`W̃ = … / g`).
    pub scale: f32,
}

/// `len` random ±1 values from `rng`.
fn signs(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| if rng.random::<bool>() { -1.0 } else { 1.0 })
        .collect()
}

/// Rotate every column of `m` (`rows × cols`) by the block Hadamard along rows.
fn rotate_columns(m: &mut [f32], rows: usize, cols: usize, block: usize) -> Result<()> {
    let mut t = vec![0f32; rows * cols];
    for (i, row) in m.chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j * rows + i] = v;
        }
    }
    t.par_chunks_mut(rows).try_for_each(|c| rotate(c, block))?;
    for (j, col) in t.chunks_exact(rows).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            m[i * cols + j] = v;
        }
    }
    Ok(())
}

impl Incoherence {
    /// Transform `w` (`n × k`, row-major) in place into `W̃` whose RMS is `target_rms`
    /// (the codebook's), with signs drawn from `seed`.
    pub fn apply(w: &mut [f32], n: usize, k: usize, seed: u64, target_rms: f32) -> Result<Self> {
        if w.len() != n * k || !n.is_multiple_of(16) || !k.is_multiple_of(16) || n * k == 0 {
            return Err(Error::Invalid(format!(
                "incoherence: {} values for [{n}, {k}] (n and k must be multiples of 16)",
                w.len()
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let su = signs(&mut rng, k);
        let sv = signs(&mut rng, n);
        let (had_k, had_n) = (had_block(k), had_block(n));
        w.par_chunks_mut(k)
            .zip(&sv)
            .try_for_each(|(row, &s)| -> Result<()> {
                for (v, &u) in row.iter_mut().zip(&su) {
                    *v *= s * u;
                }
                Ok(rotate(row, had_k)?)
            })?;
        rotate_columns(w, n, k, had_n)?;
        let ss: f64 = w.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let rms = (ss / w.len() as f64).sqrt() as f32;
        let scale = if rms > 0.0 && rms.is_finite() && target_rms > 0.0 {
            rms / target_rms
        } else {
            1.0
        };
        let inv = 1.0 / scale;
        w.par_iter_mut().for_each(|v| *v *= inv);
        Ok(Self {
            su,
            sv,
            had_k,
            had_n,
            scale,
        })
    }

    /// `H̃ = H_k·diag(su)·H·diag(su)·H_k` of a `k × k` Hessian (f64, computed in f64).
    pub fn hessian(&self, h: &[f64]) -> Result<Vec<f64>> {
        let k = self.su.len();
        if h.len() != k * k {
            return Err(Error::Invalid(format!(
                "incoherence: Hessian of {} entries for k = {k}",
                h.len()
            )));
        }
        let mut m: Vec<f64> = h
            .par_chunks(k)
            .enumerate()
            .flat_map_iter(|(i, row)| {
                let si = f64::from(self.su[i]);
                row.iter()
                    .zip(&self.su)
                    .map(move |(&v, &sj)| v * si * f64::from(sj))
            })
            .collect();
        // Rows, then columns (= rows of the transpose; the result is symmetric).
        m.par_chunks_mut(k)
            .try_for_each(|r| rotate_f64(r, self.had_k))?;
        let mut t = vec![0f64; k * k];
        for i in 0..k {
            for j in 0..k {
                t[j * k + i] = m[i * k + j];
            }
        }
        t.par_chunks_mut(k)
            .try_for_each(|r| rotate_f64(r, self.had_k))?;
        Ok(t)
    }

    /// The format's `suh` (k) and `svh` (n) vectors.
    pub fn fold(&self) -> (Vec<f32>, Vec<f32>) {
        let svh = self.sv.iter().map(|&s| s * self.scale).collect();
        (self.su.clone(), svh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_inverts_through_the_folded_vectors_and_keeps_the_proxy_loss() {
        let (n, k) = (48, 32);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01 + if i % 7 == 0 { 2.0 } else { 0.0 })
            .collect();
        let mut wt = w.clone();
        let inc = Incoherence::apply(&mut wt, n, k, 42, 1.25).unwrap();
        assert_eq!((inc.had_k, inc.had_n), (32, 16));
        let rms = (wt.iter().map(|v| v * v).sum::<f32>() / wt.len() as f32).sqrt();
        assert!((rms - 1.25).abs() < 1e-4, "{rms}");
        // The same seed gives the same signs; another seed differs.
        let mut again = w.clone();
        assert_eq!(Incoherence::apply(&mut again, n, k, 42, 1.25).unwrap(), inc);
        let mut other = w.clone();
        assert_ne!(
            Incoherence::apply(&mut other, n, k, 43, 1.25).unwrap().su,
            inc.su
        );
        // W = diag(svh)·H_n·W̃·H_k·diag(suh).
        let (suh, svh) = inc.fold();
        let mut back = wt.clone();
        back.chunks_exact_mut(k)
            .for_each(|r| rotate(r, inc.had_k).unwrap());
        rotate_columns(&mut back, n, k, inc.had_n).unwrap();
        for i in 0..n {
            for j in 0..k {
                let v = back[i * k + j] * svh[i] * suh[j];
                assert!((v - w[i * k + j]).abs() < 1e-5, "{i},{j}");
            }
        }
        // tr(ΔW·H·ΔWᵀ) = g²·tr(ΔW̃·H̃·ΔW̃ᵀ) for a perturbation of W̃.
        let h: Vec<f64> = (0..k * k)
            .map(|i| {
                let (a, b) = (i / k, i % k);
                (if a == b { 2.0 } else { 0.0 }) + 0.5 / (1.0 + (a as f64 - b as f64).abs())
            })
            .collect();
        let ht = inc.hessian(&h).unwrap();
        let dt: Vec<f32> = (0..n * k)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) * 0.01)
            .collect();
        let mut dw = dt.clone();
        dw.chunks_exact_mut(k)
            .for_each(|r| rotate(r, inc.had_k).unwrap());
        rotate_columns(&mut dw, n, k, inc.had_n).unwrap();
        for i in 0..n {
            for j in 0..k {
                dw[i * k + j] *= svh[i] * suh[j];
            }
        }
        let quad = |d: &[f32], h: &[f64]| -> f64 {
            d.chunks_exact(k)
                .map(|r| {
                    (0..k)
                        .map(|a| {
                            (0..k)
                                .map(|b| f64::from(r[a]) * h[a * k + b] * f64::from(r[b]))
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        let g2 = f64::from(inc.scale).powi(2);
        let (a, b) = (quad(&dw, &h), g2 * quad(&dt, &ht));
        assert!((a - b).abs() < 1e-4 * a, "{a} vs {b}");
        assert!(Incoherence::apply(&mut [0.0; 40], 4, 10, 1, 1.0).is_err());
        assert!(inc.hessian(&[1.0; 3]).is_err());
    }
}
