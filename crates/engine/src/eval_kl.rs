//! KL divergence of a quantized model against its base: both run the same windows of a
//! text (the [`crate::eval`] windowing, BOS replacing each window's first token), and at
//! every scored position we compare the next-token distributions: mean `KL(P_base ‖ P_q)`
//! in nats, its 99th percentile, and how often the two top-1 tokens agree. The same
//! logits also give both perplexities (identical to [`crate::eval::perplexity`]'s).

use marlin_models::forward::LogitsRequest;

use crate::eval::nll;
use crate::generate::Engine;
use crate::{Error, Result};

/// The outcome of a KL run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlResult {
    /// Mean KL(P_base ‖ P_q) per scored position, nats.
    pub mean_kl: f64,
    /// 99th percentile of the per-position KL.
    pub p99_kl: f64,
    /// Fraction of positions whose argmax tokens agree.
    pub top1_agreement: f64,
    /// Perplexity of the compared model on the scored positions.
    pub perplexity: f64,
    /// Perplexity of the reference.
    pub reference_perplexity: f64,
    /// Positions scored.
    pub tokens: usize,
    /// Windows evaluated.
    pub windows: usize,
}

/// log-softmax of `logits` in f64.
fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max
        + logits
            .iter()
            .map(|&l| (l as f64 - max).exp())
            .sum::<f64>()
            .ln();
    logits.iter().map(|&l| l as f64 - lse).collect()
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

/// KL(P ‖ Q) of two logit rows (nats).
pub fn kl_rows(base: &[f32], q: &[f32]) -> f64 {
    let (lp, lq) = (log_softmax(base), log_softmax(q));
    lp.iter()
        .zip(&lq)
        .map(|(&a, &b)| {
            if a.is_finite() {
                a.exp() * (a - b)
            } else {
                0.0
            }
        })
        .sum::<f64>()
        .max(0.0)
}

/// Compare `quant` against `base` on windows of `ctx` tokens of `tokens` (the second half
/// of each window scored, as perplexity does, unless `score_all`).
pub fn kl_divergence(
    quant: &mut Engine,
    base: &mut Engine,
    tokens: &[u32],
    ctx: usize,
    bos: Option<u32>,
    score_all: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<KlResult> {
    if quant.model().config.vocab != base.model().config.vocab {
        return Err(Error::InvalidRequest(format!(
            "vocabularies differ: {} vs {}",
            quant.model().config.vocab,
            base.model().config.vocab
        )));
    }
    let windows = tokens.len() / ctx.max(1);
    if ctx < 4 || windows == 0 {
        return Err(Error::InvalidRequest(format!(
            "the text has {} tokens, fewer than one window of {ctx}",
            tokens.len()
        )));
    }
    let first = if score_all { 0 } else { ctx / 2 };
    let (mut kls, mut agree, mut nq, mut nb) = (Vec::new(), 0usize, 0f64, 0f64);
    for w in 0..windows {
        let mut window = tokens[w * ctx..(w + 1) * ctx].to_vec();
        if let Some(b) = bos {
            window[0] = b;
        }
        let lq = quant.prompt_logits(&window, LogitsRequest::All)?;
        let lb = base.prompt_logits(&window, LogitsRequest::All)?;
        for j in first..ctx - 1 {
            let (b, q) = (lb.row(j), lq.row(j));
            kls.push(kl_rows(b, q));
            agree += usize::from(argmax(b) == argmax(q));
            nq += nll(q, window[j + 1]);
            nb += nll(b, window[j + 1]);
        }
        progress(w + 1, windows);
    }
    let n = kls.len().max(1);
    let mean_kl = kls.iter().sum::<f64>() / n as f64;
    kls.sort_by(f64::total_cmp);
    let p99_kl = kls
        .get((kls.len() * 99 / 100).min(kls.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    Ok(KlResult {
        mean_kl,
        p99_kl,
        top1_agreement: agree as f64 / n as f64,
        perplexity: (nq / n as f64).exp(),
        reference_perplexity: (nb / n as f64).exp(),
        tokens: kls.len(),
        windows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_of_known_distributions() {
        assert!(kl_rows(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).abs() < 1e-12);
        // P = (1/2, 1/2), Q = (1/(1+e), e/(1+e)): KL = ln((1+e)/2) − 1/2.
        let e = std::f64::consts::E;
        let want = ((1.0 + e) / 2.0).ln() - 0.5;
        assert!((kl_rows(&[0.0, 0.0], &[0.0, 1.0]) - want).abs() < 1e-9);
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
    }
}
