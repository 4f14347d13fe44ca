//! Repetition, presence and frequency penalties with llama.cpp's semantics.

use std::collections::HashMap;

use super::SamplingParams;

/// Apply the penalties of `p` to `logits` for the tokens of `history` (its last
/// `penalty_last_n`): a seen token's logit is divided by the repetition penalty when positive
/// and multiplied when negative, then reduced by `count × frequency + presence`.
pub fn apply_penalties(p: &SamplingParams, logits: &mut [f32], history: &[u32]) {
    let active =
        p.repetition_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0;
    if !active || history.is_empty() {
        return;
    }
    let window = if p.penalty_last_n == 0 {
        history
    } else {
        &history[history.len().saturating_sub(p.penalty_last_n)..]
    };
    let mut counts: HashMap<u32, u32> = HashMap::with_capacity(window.len());
    for &t in window {
        *counts.entry(t).or_default() += 1;
    }
    for (t, n) in counts {
        let Some(l) = logits.get_mut(t as usize) else {
            continue;
        };
        if *l > 0.0 {
            *l /= p.repetition_penalty;
        } else {
            *l *= p.repetition_penalty;
        }
        *l -= n as f32 * p.frequency_penalty + p.presence_penalty;
    }
}
