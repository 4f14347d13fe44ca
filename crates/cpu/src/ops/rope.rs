//! `RopeTable`: RoPE with cos/sin precomputed per position, grown on demand.

use std::sync::{PoisonError, RwLock};

use marlin_core::rope::{RopeConfig, RopeMode};
use rayon::prelude::*;

use super::PAR_MIN_ELEMS;
use crate::{Error, Result};

/// Positions the table first grows to.
const MIN_POSITIONS: usize = 1024;
/// Positions past this are refused (the table would not fit in memory).
pub const MAX_POSITIONS: usize = 1 << 24;

/// RoPE for one [`RopeConfig`] and head size, with `[pos][cos(n_rot/2) ‖ sin(n_rot/2)]`
/// precomputed (angles in f64). Shared between threads; grows under a lock when a position
/// past the table shows up.
#[derive(Debug)]
pub struct RopeTable {
    mode: RopeMode,
    half: usize,
    head_dim: usize,
    inv_freqs: Vec<f32>,
    table: RwLock<Vec<f32>>,
}

impl RopeTable {
    /// A table for heads of `head_dim` values; fails if `cfg` is invalid for that size.
    pub fn new(cfg: &RopeConfig, head_dim: usize) -> Result<Self> {
        cfg.validate(head_dim)?;
        Ok(Self {
            mode: cfg.mode,
            half: cfg.n_rot / 2,
            head_dim,
            inv_freqs: cfg.inv_freqs(),
            table: RwLock::new(Vec::new()),
        })
    }

    /// The head size this table rotates.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Positions currently precomputed.
    pub fn cached_positions(&self) -> usize {
        let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
        t.len() / (2 * self.half)
    }

    /// Makes sure positions `0..n_positions` are precomputed (at most [`MAX_POSITIONS`]).
    pub fn ensure(&self, n_positions: usize) {
        if self.cached_positions() >= n_positions {
            return;
        }
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let have = t.len() / (2 * self.half);
        if have >= n_positions {
            return;
        }
        let want = n_positions
            .min(MAX_POSITIONS)
            .next_power_of_two()
            .max(MIN_POSITIONS);
        t.reserve((want - have) * 2 * self.half);
        for pos in have..want {
            let angles = self.inv_freqs.iter().map(|&f| pos as f64 * f64::from(f));
            t.extend(angles.clone().map(|a| a.cos() as f32));
            t.extend(angles.map(|a| a.sin() as f32));
        }
    }

    /// Rotates `x` (`n_tokens × n_heads × head_dim`, token `t` at `positions[t]`) in place.
    /// Wrong sizes are caught by [`RopeTable::try_apply`]; here they trip a debug assertion
    /// and leave `x` unchanged.
    pub fn apply(&self, x: &mut [f32], positions: &[usize], n_heads: usize, head_dim: usize) {
        let r = self.try_apply(x, positions, n_heads, head_dim);
        debug_assert!(r.is_ok(), "RopeTable::apply: {r:?}");
    }

    /// [`RopeTable::apply`] that reports mismatched sizes as an error.
    pub fn try_apply(
        &self,
        x: &mut [f32],
        positions: &[usize],
        n_heads: usize,
        head_dim: usize,
    ) -> Result<()> {
        let row = n_heads * head_dim;
        if head_dim != self.head_dim || x.len() != positions.len() * row {
            return Err(Error::Shape {
                op: "rope",
                msg: format!(
                    "x has {} values for {} tokens × {n_heads} heads × {head_dim} \
                     (table head_dim {})",
                    x.len(),
                    positions.len(),
                    self.head_dim
                ),
            });
        }
        let Some(&max_pos) = positions.iter().max() else {
            return Ok(());
        };
        if max_pos >= MAX_POSITIONS {
            return Err(Error::Shape {
                op: "rope",
                msg: format!("position {max_pos} is past the supported {MAX_POSITIONS}"),
            });
        }
        self.ensure(max_pos + 1);
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let stride = 2 * self.half;
        let token = |(xt, &pos): (&mut [f32], &usize)| {
            let cs = &table[pos * stride..(pos + 1) * stride];
            let (cos, sin) = cs.split_at(self.half);
            for head in xt.chunks_exact_mut(head_dim) {
                self.rotate(head, cos, sin);
            }
        };
        if x.len() >= PAR_MIN_ELEMS && positions.len() > 1 {
            x.par_chunks_exact_mut(row)
                .zip(positions.par_iter())
                .for_each(token);
        } else {
            x.chunks_exact_mut(row).zip(positions).for_each(token);
        }
        Ok(())
    }

    fn rotate(&self, head: &mut [f32], cos: &[f32], sin: &[f32]) {
        match self.mode {
            RopeMode::Normal => {
                for ((pair, &c), &s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = a * c - b * s;
                    pair[1] = a * s + b * c;
                }
            }
            RopeMode::Neox => {
                let (lo, hi) = head[..2 * self.half].split_at_mut(self.half);
                for (((a, b), &c), &s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
                    let (x0, x1) = (*a, *b);
                    *a = x0 * c - x1 * s;
                    *b = x0 * s + x1 * c;
                }
            }
        }
    }
}
