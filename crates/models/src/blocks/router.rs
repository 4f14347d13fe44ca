//! MoE routing: router logits → the experts a token goes to and their weights (softmax or
//! sigmoid scores, correction bias for selection only, group-limited top-k, renormalisation,
//! routed scaling), as transformers' `Glm4MoeLiteTopkRouter` / `Qwen3MoeTopKRouter` do.

use super::config::{MoeConfig, Scoring};

/// Added to the denominator when renormalising sigmoid weights (as the reference does).
const NORM_EPS: f32 = 1e-20;

/// Indices of the `k` largest values of `v` (ties: lower index first), largest first.
fn top_indices(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// The experts one token is routed to, with their weights, from its router `logits`
/// (`n_experts` values) and the optional correction `bias`.
pub fn route(cfg: &MoeConfig, logits: &[f32], bias: Option<&[f32]>) -> Vec<(usize, f32)> {
    let scores: Vec<f32> = match cfg.scoring {
        Scoring::Softmax => {
            let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = logits.iter().map(|&x| (x - m).exp()).collect();
            let z: f32 = e.iter().sum();
            e.iter().map(|&x| x / z).collect()
        }
        Scoring::Sigmoid => logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
    };
    let mut choice = scores.clone();
    if let Some(b) = bias {
        choice.iter_mut().zip(b).for_each(|(c, &b)| *c += b);
    }
    if cfg.n_group > 1 {
        let size = choice.len() / cfg.n_group;
        let group_scores: Vec<f32> = choice
            .chunks_exact(size)
            .map(|g| top_indices(g, 2).iter().map(|&i| g[i]).sum())
            .collect();
        let kept = top_indices(&group_scores, cfg.topk_group);
        for (g, chunk) in choice.chunks_exact_mut(size).enumerate() {
            if !kept.contains(&g) {
                chunk.iter_mut().for_each(|c| *c = f32::NEG_INFINITY);
            }
        }
    }
    let picked = top_indices(&choice, cfg.top_k);
    let mut weights: Vec<f32> = picked.iter().map(|&i| scores[i]).collect();
    if cfg.norm_topk_prob {
        let eps = if cfg.scoring == Scoring::Sigmoid {
            NORM_EPS
        } else {
            0.0
        };
        let sum: f32 = weights.iter().sum::<f32>() + eps;
        weights.iter_mut().for_each(|w| *w /= sum);
    }
    weights.iter_mut().for_each(|w| *w *= cfg.routed_scale);
    picked.into_iter().zip(weights).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(scoring: Scoring, n_group: usize, topk_group: usize) -> MoeConfig {
        MoeConfig {
            n_experts: 8,
            top_k: 2,
            expert_ffn: 4,
            shared_ffn: 0,
            scoring,
            norm_topk_prob: true,
            routed_scale: 2.0,
            n_group,
            topk_group,
            sparse_layers: vec![true],
        }
    }

    #[test]
    fn sigmoid_bias_selects_but_does_not_weight() {
        let logits = [0.0, 1.0, 2.0, 0.5, -1.0, 0.0, 0.0, 0.0];
        let mut bias = [0.0f32; 8];
        bias[4] = 5.0; // expert 4 wins selection despite the lowest score
        let r = route(&cfg(Scoring::Sigmoid, 1, 1), &logits, Some(&bias));
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![4, 2]);
        let (s4, s2) = (1.0 / (1.0 + 1f32.exp()), 1.0 / (1.0 + (-2f32).exp()));
        assert!((r[0].1 - 2.0 * s4 / (s4 + s2)).abs() < 1e-6);
        assert!((r[1].1 - 2.0 * s2 / (s4 + s2)).abs() < 1e-6);
    }

    #[test]
    fn group_limit_keeps_the_best_group() {
        // Group 0 (experts 0..4) has the single best expert, group 1 the best top-2 sum.
        let logits = [3.0, -5.0, -5.0, -5.0, 1.5, 1.4, 0.0, 0.0];
        let r = route(&cfg(Scoring::Sigmoid, 2, 1), &logits, None);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![4, 5]);
        let plain = route(&cfg(Scoring::Sigmoid, 1, 1), &logits, None);
        assert_eq!(plain[0].0, 0);
    }

    #[test]
    fn softmax_top_k_renormalised() {
        let logits = [1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut c = cfg(Scoring::Softmax, 1, 1);
        c.routed_scale = 1.0;
        let r = route(&c, &logits, None);
        assert_eq!(r[0].0, 1);
        assert_eq!(r[1].0, 2);
        let want = 1.0 / (1.0 + (-1f32).exp());
        assert!((r[0].1 - want).abs() < 1e-6 && (r[0].1 + r[1].1 - 1.0).abs() < 1e-6);
    }
}
