//! `Sampler`: penalties, then top-k → top-p → min-p → temperature → a seeded draw.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::filters::{self, argmax, Cand};
use super::penalties::apply_penalties;
use super::SamplingParams;

/// Picks the next token of one sequence; owns its random generator.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    cands: Vec<Cand>,
}

impl Sampler {
    /// A sampler for `params`, seeded from `params.seed` (or the OS).
    pub fn new(params: &SamplingParams) -> Self {
        let rng = match params.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self {
            params: params.clone(),
            rng,
            cands: Vec::new(),
        }
    }

    /// The parameters this sampler applies.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Pick a token from `logits` (one row, vocabulary-sized), given the `history` of the
    /// sequence (prompt and generated tokens) for the penalties. `logits` is modified.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let p = &self.params;
        apply_penalties(p, logits, history);
        if p.is_greedy() || logits.contains(&f32::INFINITY) {
            return argmax(logits);
        }
        let c = &mut self.cands;
        c.clear();
        c.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, &l)| (i as u32, l)),
        );
        if c.is_empty() {
            return argmax(logits);
        }
        let sorted = filters::top_k(c, p.top_k);
        filters::top_p(c, p.top_p, sorted);
        filters::min_p(c, p.min_p);
        let max = c.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / f64::from(p.temperature);
        let total: f64 = c.iter().map(|x| (f64::from(x.1 - max) * inv_t).exp()).sum();
        let mut u = self.rng.random::<f64>() * total;
        for &(id, l) in c.iter() {
            u -= (f64::from(l - max) * inv_t).exp();
            if u < 0.0 {
                return id;
            }
        }
        // Rounding left `u` a hair above zero: the last candidate.
        c.last().map_or(0, |x| x.0)
    }
}
