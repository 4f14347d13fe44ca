//! Hessian accumulation for GPTQ: `H = (2/N)·Σ x·xᵀ` over the `N` input rows a linear saw
//! during calibration (digest §5.1). `XᵀX` runs on the CPU f32 GEMM.

use marlin_core::QTensor;

use crate::Result;

/// Σ x·xᵀ of one input site (f32, `d × d`) and how many rows went in.
#[derive(Debug, Clone)]
pub struct Acc {
    d: usize,
    sum: Vec<f32>,
    n: usize,
}

impl Acc {
    /// An empty sum for inputs of width `d`.
    pub fn new(d: usize) -> Self {
        Self {
            d,
            sum: vec![0f32; d * d],
            n: 0,
        }
    }

    /// Input width.
    pub fn width(&self) -> usize {
        self.d
    }

    /// Rows accumulated so far.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Bytes held by the sum.
    pub fn bytes(&self) -> usize {
        4 * self.sum.len()
    }

    /// `sum += XᵀX` for `x` = rows of `d` values.
    pub fn add(&mut self, x: &[f32]) -> Result<()> {
        let d = self.d;
        let n = x.len() / d.max(1);
        if n == 0 {
            return Ok(());
        }
        let mut xt = vec![0f32; d * n];
        for (t, row) in x.chunks_exact(d).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                xt[i * n + t] = v;
            }
        }
        let w = QTensor::from_f32(vec![d, n], &xt)?;
        let mut out = vec![0f32; d * d];
        marlin_cpu::matmul::matmul(&w, &xt, d, &mut out)?;
        for (s, o) in self.sum.iter_mut().zip(&out) {
            *s += o;
        }
        self.n += n;
        Ok(())
    }

    /// `H = 2/N · Σ x·xᵀ` as f64 (`d × d`); `None` before any row.
    pub fn hessian(&self) -> Option<Vec<f64>> {
        if self.n == 0 {
            return None;
        }
        let k = 2.0 / self.n as f64;
        Some(self.sum.iter().map(|&v| f64::from(v) * k).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hessian_is_two_over_n_x_xt() {
        let mut a = Acc::new(2);
        a.add(&[1.0, 2.0, 3.0, -1.0]).unwrap();
        a.add(&[]).unwrap();
        assert_eq!(a.rows(), 2);
        let h = a.hessian().unwrap();
        // Σ x xᵀ = [[1+9, 2-3], [2-3, 4+1]] = [[10, -1], [-1, 5]]; × 2/2.
        assert_eq!(h, vec![10.0, -1.0, -1.0, 5.0]);
        assert_eq!(a.bytes(), 16);
        assert!(Acc::new(3).hessian().is_none());
    }
}
