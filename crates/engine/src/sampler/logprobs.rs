//! Log-probabilities of a logits row (log-softmax), for `logprobs` in API responses.

/// A token and its log-probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    /// Token id.
    pub id: u32,
    /// Natural-log probability.
    pub logprob: f32,
}

/// log Σ exp(logits), computed stably in f64 (−∞ for an empty or all −∞ row).
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits
        .iter()
        .copied()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f64::from(max);
    }
    let sum: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    f64::from(max) + sum.ln()
}

/// The log-probability of token `id` (`None` when out of range).
pub fn token_logprob(logits: &[f32], id: u32) -> Option<f32> {
    let l = *logits.get(id as usize)?;
    Some((f64::from(l) - log_sum_exp(logits)) as f32)
}

/// The `n` most likely tokens with their log-probabilities, most likely first (ties: lower
/// id first).
pub fn top_logprobs(logits: &[f32], n: usize) -> Vec<TokenLogprob> {
    let lse = log_sum_exp(logits);
    let mut idx: Vec<u32> = (0..logits.len() as u32)
        .filter(|&i| !logits[i as usize].is_nan())
        .collect();
    let by_logit = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    let n = n.min(idx.len());
    if n == 0 {
        return Vec::new();
    }
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, by_logit);
        idx.truncate(n);
    }
    idx.sort_unstable_by(by_logit);
    idx.into_iter()
        .map(|id| TokenLogprob {
            id,
            logprob: (f64::from(logits[id as usize]) - lse) as f32,
        })
        .collect()
}
