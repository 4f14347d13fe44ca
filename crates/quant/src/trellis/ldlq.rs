//! LDLQ (QuIP/QTIP BlockLDLQ): with the damped Hessian factored `H = U·D·Uᵀ` (`U` unit
//! block-upper-triangular, 16-column blocks), the proxy loss is `‖(W − Ŵ)·U·D^½‖²`, so
//! quantizing column block `b` as `Ŵ_b = Q(W_b + Σ_{a<b} (W_a − Ŵ_a)·U_ab)` leaves only
//! block `b`'s own residual. Each block is `n/16` tiles through Viterbi, in parallel.

use std::cell::RefCell;

use rayon::prelude::*;

use super::viterbi::{tile_path, Scratch, Search, TILE};
use crate::linalg::cholesky_lower;
use crate::{Error, Result};

/// Columns per LDL block (= tile width).
pub const BLOCK: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A codebook ready for the search: 65536 decoded values, bits per weight, search knobs.
#[derive(Debug, Clone, Copy)]
pub struct Codes<'a> {
    pub table: &'a [f32],
    pub bits: u32,
    pub search: Search,
}

/// The tile path of `w` (256 values) on this thread's scratch buffers.
pub fn path(codes: Codes<'_>, w: &[f32]) -> Result<[u16; TILE]> {
    SCRATCH.with(|s| {
        let mut s = s
            .try_borrow_mut()
            .map_err(|e| Error::Numeric(e.to_string()))?;
        tile_path(codes.table, codes.bits, w, codes.search, &mut s)
    })
}

/// `U` (`k × k`, f32, row-major; only the strictly block-upper part is non-zero) of the
/// Hessian damped by `damp · mean(diag)` (more damping while it is not positive definite).
pub fn block_upper_factor(h: &[f64], k: usize, damp: f64) -> Result<Vec<f32>> {
    if h.len() != k * k || !k.is_multiple_of(BLOCK) {
        return Err(Error::Invalid(format!(
            "ldlq: Hessian of {} entries for k = {k} (a multiple of {BLOCK})",
            h.len()
        )));
    }
    let mean = (0..k).map(|i| h[i * k + i]).sum::<f64>() / k as f64;
    let mut lambda = (damp * mean).max(1e-8);
    for _ in 0..6 {
        // J·H·J = L'·L'ᵀ  ⇒  H = R·Rᵀ with R = J·L'·J upper triangular.
        let rev: Vec<f64> = (0..k * k)
            .map(|i| {
                let (a, b) = (k - 1 - i / k, k - 1 - i % k);
                h[a * k + b] + if a == b { lambda } else { 0.0 }
            })
            .collect();
        match cholesky_lower(&rev, k) {
            Ok(l) => return Ok(upper_from_r(&l, k)),
            Err(_) => lambda *= 10.0,
        }
    }
    Err(Error::Numeric(
        "Hessian stays singular after damping".into(),
    ))
}

/// `U_ab = R_ab · R_bb⁻¹` for blocks `a < b`, with `R[i][j] = l[(k−1−i)(k)+(k−1−j)]`.
fn upper_from_r(l: &[f64], k: usize) -> Vec<f32> {
    let r = |i: usize, j: usize| l[(k - 1 - i) * k + (k - 1 - j)];
    // Inverses of the upper-triangular diagonal blocks R_bb (column by column).
    // Row-major 16×16: inv[i·16 + j].
    let invs: Vec<[f64; BLOCK * BLOCK]> = (0..k / BLOCK)
        .map(|b| {
            let c0 = b * BLOCK;
            let mut inv = [0f64; BLOCK * BLOCK];
            for j in 0..BLOCK {
                inv[j * BLOCK + j] = 1.0 / r(c0 + j, c0 + j);
                for i in (0..j).rev() {
                    let s: f64 = (i + 1..=j)
                        .map(|m| r(c0 + i, c0 + m) * inv[m * BLOCK + j])
                        .sum();
                    inv[i * BLOCK + j] = -s / r(c0 + i, c0 + i);
                }
            }
            inv
        })
        .collect();
    let mut u = vec![0f32; k * k];
    u.par_chunks_mut(k * BLOCK)
        .enumerate()
        .for_each(|(a, rows)| {
            for (b, inv) in invs.iter().enumerate().skip(a + 1) {
                let c0 = b * BLOCK;
                for (ri, row) in rows.chunks_exact_mut(k).enumerate() {
                    let i = a * BLOCK + ri;
                    for (j, out) in row[c0..c0 + BLOCK].iter_mut().enumerate() {
                        let s: f64 = (0..=j).map(|m| r(i, c0 + m) * inv[m * BLOCK + j]).sum();
                        *out = s as f32;
                    }
                }
            }
        });
    u
}

/// Copy tile (tn, tk) of `m` (`n × k`) into `out` (256, row-major in the tile).
fn tile_of(m: &[f32], k: usize, tn: usize, tk: usize, out: &mut [f32]) {
    for (r, o) in out.chunks_exact_mut(BLOCK).enumerate() {
        let at = (tn * BLOCK + r) * k + tk * BLOCK;
        o.copy_from_slice(&m[at..at + BLOCK]);
    }
}

/// Quantize `wt` (`n × k`, already incoherent) to tile paths, tile `(tn, tk)` at index
/// `tn·(k/16) + tk`. With `u` (from [`block_upper_factor`]) the errors are fed forward;
/// without, every tile is searched independently. `tick(tiles)` reports progress.
pub fn quantize(
    codes: Codes<'_>,
    wt: &[f32],
    n: usize,
    k: usize,
    u: Option<&[f32]>,
    tick: &(dyn Fn(usize) + Sync),
) -> Result<Vec<[u16; TILE]>> {
    if wt.len() != n * k || !n.is_multiple_of(BLOCK) || !k.is_multiple_of(BLOCK) {
        return Err(Error::Invalid(format!(
            "ldlq: {} weights for [{n}, {k}] (multiples of {BLOCK})",
            wt.len()
        )));
    }
    let (tn_count, tk_count) = (n / BLOCK, k / BLOCK);
    let Some(u) = u else {
        return (0..tn_count * tk_count)
            .into_par_iter()
            .map(|i| {
                let mut t = [0f32; TILE];
                tile_of(wt, k, i / tk_count, i % tk_count, &mut t);
                let p = path(codes, &t);
                tick(1);
                p
            })
            .collect();
    };
    if u.len() != k * k {
        return Err(Error::Invalid(format!(
            "ldlq: U of {} for k = {k}",
            u.len()
        )));
    }
    let mut x = wt.to_vec();
    let mut paths = vec![[0u16; TILE]; tn_count * tk_count];
    for tk in 0..tk_count {
        let block: Vec<[u16; TILE]> = (0..tn_count)
            .into_par_iter()
            .map(|tn| {
                let mut t = [0f32; TILE];
                tile_of(&x, k, tn, tk, &mut t);
                let p = path(codes, &t);
                tick(1);
                p
            })
            .collect::<Result<_>>()?;
        let c0 = tk * BLOCK;
        let rest = c0 + BLOCK;
        // E_b = W_b − Ŵ_b (against the original weights), then X_c += E_b·U_bc for c ≥ rest.
        x.par_chunks_mut(k).enumerate().for_each(|(row, xr)| {
            let (tn, r) = (row / BLOCK, row % BLOCK);
            let states = &block[tn][r * BLOCK..(r + 1) * BLOCK];
            let mut e = [0f32; BLOCK];
            for (j, ej) in e.iter_mut().enumerate() {
                *ej = wt[row * k + c0 + j] - codes.table[usize::from(states[j])];
            }
            let xs = &mut xr[rest..];
            for (j, &ej) in e.iter().enumerate() {
                let ur = &u[(c0 + j) * k + rest..(c0 + j + 1) * k];
                for (xv, &uv) in xs.iter_mut().zip(ur) {
                    *xv += ej * uv;
                }
            }
        });
        for (tn, p) in block.into_iter().enumerate() {
            paths[tn * tk_count + tk] = p;
        }
    }
    Ok(paths)
}
