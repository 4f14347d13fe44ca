//! Perplexity in llama.cpp's `llama-perplexity` convention, so numbers are comparable.
//!
//! The token stream is cut into non-overlapping windows of `ctx` tokens (the remainder is
//! dropped). When the model wants a BOS token, each window's first token is replaced by it.
//! In each window, logits at positions `j = ctx/2 ..= ctx-2` score token `j+1` (the first
//! half only provides context); with `score_all`, every `j = 0 ..= ctx-2` is scored.

use marlin_models::forward::LogitsRequest;

use crate::generate::Engine;
use crate::{Error, Result};

/// The outcome of a perplexity run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perplexity {
    /// exp(mean NLL).
    pub perplexity: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// Mean negative log-likelihood per scored token (nats).
    pub nll: f64,
    /// Windows evaluated.
    pub windows: usize,
}

/// -log softmax(logits)[target], computed stably in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    max + sum.ln() - logits[target as usize] as f64
}

/// Perplexity of `tokens` with windows of `ctx` tokens; `bos` replaces each window's first
/// token when given. `progress(done, total)` is called after each window.
pub fn perplexity(
    engine: &mut Engine,
    tokens: &[u32],
    ctx: usize,
    bos: Option<u32>,
    score_all: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Perplexity> {
    if ctx < 4 {
        return Err(Error::InvalidRequest(format!("--ctx {ctx} is too small")));
    }
    let windows = tokens.len() / ctx;
    if windows == 0 {
        return Err(Error::InvalidRequest(format!(
            "the text has {} tokens, fewer than one window of {ctx}",
            tokens.len()
        )));
    }
    let first = if score_all { 0 } else { ctx / 2 };
    let (mut sum, mut count) = (0.0f64, 0usize);
    for w in 0..windows {
        let mut window = tokens[w * ctx..(w + 1) * ctx].to_vec();
        if let Some(b) = bos {
            window[0] = b;
        }
        let logits = engine.prompt_logits(&window, LogitsRequest::All)?;
        for j in first..ctx - 1 {
            sum += nll(logits.row(j), window[j + 1]);
            count += 1;
        }
        progress(w + 1, windows);
    }
    let mean = sum / count as f64;
    Ok(Perplexity {
        perplexity: mean.exp(),
        tokens: count,
        nll: mean,
        windows,
    })
}

#[cfg(test)]
mod tests {
    use super::nll;

    #[test]
    fn nll_matches_log_softmax() {
        let logits = [1.0f32, 2.0, 3.0];
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).sum();
        let want = -(2.0f64.exp() / z).ln();
        assert!((nll(&logits, 1) - want).abs() < 1e-12);
    }
}
