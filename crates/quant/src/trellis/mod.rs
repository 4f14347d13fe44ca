//! Trellis quantization (QTIP/EXL3 bitshift trellis, digest §6) onto core's trellis format:
//! random-sign Hadamard incoherence ([`incoherence`]), Viterbi per 16×16 tile
//! ([`viterbi`]) and LDLQ error feedback through the block-LDL of the Hessian ([`ldlq`]).

pub mod balance;
pub mod hook;
pub mod incoherence;
pub mod ldlq;
pub mod viterbi;
mod viterbi_simd;

#[cfg(test)]
mod experiment;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use marlin_core::formats::trellis::{decode_value, layout, pack_states, tile_words};
use marlin_core::{Codebook, TrellisFormat};

use crate::{Error, Result};
pub use balance::Balance;
pub use incoherence::Incoherence;
pub use ldlq::{block_upper_factor, Codes};
pub use viterbi::Search;

/// Options of the trellis quantizer.
#[derive(Debug, Clone, Copy)]
pub struct TrellisOptions {
    /// Seed of the random sign vectors (the signs end up in `suh`/`svh`).
    pub seed: u64,
    /// Hessian damping, as a fraction of its mean diagonal. 0.1, not GPTQ's 0.01: on
    /// SmolLM2 with 16×256 calibration tokens the held-out proxy loss fell ~17% from 0.01
    /// to 0.1–0.3 (over-fitting); with 256×256 varied tokens it is flat from 0.02 to 0.2.
    pub damp: f64,
    /// Viterbi knobs.
    pub search: Search,
    /// Rounds of row/column balancing ([`Balance`]); 0 = off (1: ~10% lower proxy loss).
    pub balance: usize,
    /// RMS of the incoherent weights relative to the codebook's (0.95 measured ~1–2%
    /// lower held-out proxy loss at K=3 than 1.0).
    pub rms_ratio: f32,
}

impl Default for TrellisOptions {
    fn default() -> Self {
        Self {
            seed: 0x6d61_726c_696e,
            damp: 0.1,
            search: Search::default(),
            balance: 1,
            rms_ratio: 0.95,
        }
    }
}

/// The decoded value of every state of `codebook` (computed once per codebook).
pub fn table(codebook: Codebook) -> &'static [f32] {
    static TABLES: [OnceLock<Vec<f32>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Codebook::ALL
        .iter()
        .position(|&c| c == codebook)
        .unwrap_or(0);
    TABLES[i].get_or_init(|| (0..=u16::MAX).map(|s| decode_value(codebook, s)).collect())
}

/// Root mean square of a codebook's values (what incoherent weights are scaled to).
pub fn table_rms(table: &[f32]) -> f32 {
    let ss: f64 = table.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (ss / table.len().max(1) as f64).sqrt() as f32
}

/// Quantize `w` (`[n, k]` row-major, f32) into the bytes of `format`: incoherence, then
/// LDLQ against `hessian` (`k × k`, the inputs' `2/N·Σ x·xᵀ`) or plain Viterbi without one.
/// `tick(tiles)` reports finished tiles (of `n·k/256`).
pub fn quantize_matrix(
    format: TrellisFormat,
    w: &[f32],
    n: usize,
    k: usize,
    hessian: Option<&[f64]>,
    opts: TrellisOptions,
    tick: &(dyn Fn(usize) + Sync),
) -> Result<Vec<u8>> {
    let lay = layout(format, n, k)?;
    if w.len() != n * k {
        return Err(Error::Invalid(format!(
            "trellis: {} weights for [{n}, {k}]",
            w.len()
        )));
    }
    if let Some(h) = hessian.filter(|h| h.len() != k * k) {
        return Err(Error::Invalid(format!(
            "trellis: Hessian of {} entries for k = {k}",
            h.len()
        )));
    }
    let tab = table(format.codebook);
    let mut wt = w.to_vec();
    let bal = Balance::apply(&mut wt, n, k, opts.balance);
    let inc = Incoherence::apply(&mut wt, n, k, opts.seed, table_rms(tab) * opts.rms_ratio)?;
    let u = match hessian {
        Some(h) => Some(block_upper_factor(
            &inc.hessian(&bal.hessian(h))?,
            k,
            opts.damp,
        )?),
        None => None,
    };
    let codes = Codes {
        table: tab,
        bits: format.k(),
        search: opts.search,
    };
    let paths = ldlq::quantize(codes, &wt, n, k, u.as_deref(), tick)?;
    let mut out = Vec::with_capacity(lay.bytes);
    let mut words = vec![0u32; tile_words(format.k())];
    for p in &paths {
        pack_states(p, format.k(), &mut words)?;
        out.extend(words.iter().flat_map(|x| x.to_le_bytes()));
    }
    let (mut suh, mut svh) = inc.fold();
    suh.iter_mut().zip(&bal.col).for_each(|(a, c)| *a *= c);
    svh.iter_mut().zip(&bal.row).for_each(|(a, r)| *a *= r);
    out.extend(suh.iter().chain(&svh).flat_map(|x| x.to_le_bytes()));
    if out.len() != lay.bytes {
        return Err(Error::Invalid(format!(
            "trellis: wrote {} bytes, layout wants {}",
            out.len(),
            lay.bytes
        )));
    }
    Ok(out)
}
