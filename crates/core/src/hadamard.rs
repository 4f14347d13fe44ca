//! Block-diagonal Hadamard rotation (normalized Sylvester Hadamard, blocks of 32/64/128...).
//!
//! `H_B` is symmetric and orthogonal (`H·H = I`), so a weight stored rotated as `W' = W·H`
//! (every B inputs of every row transformed) gives `W·x = W'·(H·x)`: the runtime rotates the
//! activations with the same function before the matmul.

use crate::{Error, Result};

/// Whether `block` is a usable rotation size (a power of two from 2 to 4096).
pub fn valid_block(block: usize) -> bool {
    block.is_power_of_two() && (2..=4096).contains(&block)
}

/// Rotate `x` in place, every `block` consecutive values by `H_block / √block`.
/// Errors when `block` is not a power of two or does not divide `x.len()`.
pub fn rotate(x: &mut [f32], block: usize) -> Result<()> {
    rotate_any(x, block, 1.0 / (block as f32).sqrt())
}

/// [`rotate`] in f64 (the quantizer's Hessian transforms).
pub fn rotate_f64(x: &mut [f64], block: usize) -> Result<()> {
    rotate_any(x, block, 1.0 / (block as f64).sqrt())
}

fn rotate_any<T>(x: &mut [T], block: usize, norm: T) -> Result<()>
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + std::ops::MulAssign,
{
    if !valid_block(block) || !x.len().is_multiple_of(block) {
        return Err(Error::Shape(format!(
            "hadamard block {block} does not tile {} values",
            x.len()
        )));
    }
    for chunk in x.chunks_exact_mut(block) {
        let mut h = 1;
        while h < block {
            for i in (0..block).step_by(2 * h) {
                for j in i..i + h {
                    let (a, b) = (chunk[j], chunk[j + h]);
                    chunk[j] = a + b;
                    chunk[j + h] = a - b;
                }
            }
            h *= 2;
        }
        for v in chunk.iter_mut() {
            *v *= norm;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_sylvester_matrix_and_is_its_own_inverse() {
        let b = 8;
        let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut y = x.clone();
        rotate(&mut y, b).unwrap();
        for blk in 0..2 {
            for i in 0..b {
                let want: f32 = (0..b)
                    .map(|j| {
                        let s = if (i & j).count_ones() % 2 == 0 {
                            1.0
                        } else {
                            -1.0
                        };
                        s * x[blk * b + j]
                    })
                    .sum::<f32>()
                    / (b as f32).sqrt();
                assert!((y[blk * b + i] - want).abs() < 1e-6);
            }
        }
        rotate(&mut y, b).unwrap();
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!(rotate(&mut y, 3).is_err());
        assert!(rotate(&mut y, 32).is_err());
    }
}
