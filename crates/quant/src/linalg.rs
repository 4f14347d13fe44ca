//! Dense f64 linear algebra for GPTQ: Cholesky and the upper factor `U` of `H⁻¹ = Uᵀ·U`.
//! Matrices are row-major `n × n` slices.

use crate::{Error, Result};

/// Lower Cholesky factor `L` of a symmetric positive-definite `a` (`a = L·Lᵀ`).
pub fn cholesky_lower(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let (ri, rj) = (&l[i * n..i * n + j], &l[j * n..j * n + j]);
            let s: f64 = ri.iter().zip(rj).map(|(x, y)| x * y).sum();
            let v = a[i * n + j] - s;
            if i == j {
                if v <= 0.0 || !v.is_finite() {
                    return Err(Error::Numeric(format!(
                        "matrix is not positive definite (pivot {i}: {v:.3e})"
                    )));
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// `U` upper triangular with `H⁻¹ = Uᵀ·U` (what GPTQ's update rule needs), computed as the
/// inverse of `R` where `H = R·Rᵀ` (Cholesky of the index-reversed matrix).
pub fn inverse_upper_factor(h: &[f64], n: usize) -> Result<Vec<f64>> {
    // J·H·J = L'·L'ᵀ  ⇒  H = R·Rᵀ with R = J·L'·J upper triangular.
    let mut rev = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            rev[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
        }
    }
    let lp = cholesky_lower(&rev, n)?;
    let mut r = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            r[i * n + j] = lp[(n - 1 - i) * n + (n - 1 - j)];
        }
    }
    // U = R⁻¹ (upper), row by row from the bottom: U_i = (e_i − Σ_{k>i} R_ik·U_k) / R_ii,
    // each step an axpy over contiguous rows.
    let mut u = vec![0f64; n * n];
    for i in (0..n).rev() {
        let (top, below) = u.split_at_mut((i + 1) * n);
        let row = &mut top[i * n..];
        row[i] = 1.0;
        for k in i + 1..n {
            let f = r[i * n + k];
            if f != 0.0 {
                let uk = &below[(k - i - 1) * n..(k - i) * n];
                for (a, b) in row[k..].iter_mut().zip(&uk[k..]) {
                    *a -= f * b;
                }
            }
        }
        let d = 1.0 / r[i * n + i];
        for a in row[i..].iter_mut() {
            *a *= d;
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_factor_reproduces_the_inverse() {
        let n = 5;
        // H = A·Aᵀ + I, well conditioned.
        let a: Vec<f64> = (0..n * n)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3)
            .collect();
        let mut h = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = (0..n).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let u = inverse_upper_factor(&h, n).unwrap();
        // (UᵀU)·H = I.
        for i in 0..n {
            for j in 0..n {
                let hinv_ij =
                    |i: usize, j: usize| (0..n).map(|k| u[k * n + i] * u[k * n + j]).sum::<f64>();
                let v: f64 = (0..n).map(|k| hinv_ij(i, k) * h[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "{i},{j}: {v}");
            }
            for j in 0..i {
                assert_eq!(u[i * n + j], 0.0);
            }
        }
        assert!(cholesky_lower(&[-1.0], 1).is_err());
    }
}
