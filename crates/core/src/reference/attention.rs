//! Reference causal (optionally sliding-window) grouped-query attention over contiguous K/V.

/// Causal attention for `n_q` queries against a contiguous cache.
///
/// Layouts: `q` and the result are `[n_q][n_heads][hd]`; `k` and `v` are
/// `[n_kv_tokens][n_kv_heads][hd]`, where key index `t` is absolute position `t`.
/// Query `j` sits at position `q_positions[j]` and sees keys at positions `t ≤ p` and, with a
/// window `w`, `t > p − w`. Query head `h` uses kv head `h / (n_heads / n_kv_heads)`.
/// Scores are `scale · q·k`; a query that sees no key yields zeros.
///
/// # Panics
/// If buffer sizes disagree, `n_kv_heads` does not divide `n_heads`, or a query position is
/// past the last key.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    q_positions: &[usize],
    n_heads: usize,
    n_kv_heads: usize,
    hd: usize,
    scale: f32,
    window: Option<usize>,
) -> Vec<f32> {
    let n_q = q_positions.len();
    assert_eq!(q.len(), n_q * n_heads * hd, "reference::attention: q size");
    assert!(
        n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads),
        "reference::attention: n_kv_heads must divide n_heads"
    );
    let kv_row = n_kv_heads * hd;
    assert!(
        kv_row > 0 && k.len().is_multiple_of(kv_row),
        "reference::attention: k size"
    );
    assert_eq!(k.len(), v.len(), "reference::attention: v size");
    let n_kv_tokens = k.len() / kv_row;
    let group = n_heads / n_kv_heads;

    let mut out = vec![0.0f32; n_q * n_heads * hd];
    for (j, &p) in q_positions.iter().enumerate() {
        assert!(
            p < n_kv_tokens,
            "reference::attention: query position {p} has no key"
        );
        for h in 0..n_heads {
            let kvh = h / group;
            let qv = &q[(j * n_heads + h) * hd..][..hd];
            let keys: Vec<usize> = (0..=p)
                .filter(|&t| window.is_none_or(|w| t + w > p))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let scores: Vec<f64> = keys
                .iter()
                .map(|&t| {
                    let kv = &k[t * kv_row + kvh * hd..][..hd];
                    let dot: f64 = qv
                        .iter()
                        .zip(kv)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum();
                    dot * f64::from(scale)
                })
                .collect();
            let max = scores.iter().fold(f64::NEG_INFINITY, |m, &s| m.max(s));
            let weights: Vec<f64> = scores.iter().map(|&s| (s - max).exp()).collect();
            let sum: f64 = weights.iter().sum();
            let o = &mut out[(j * n_heads + h) * hd..][..hd];
            for (d, od) in o.iter_mut().enumerate() {
                let acc: f64 = keys
                    .iter()
                    .zip(&weights)
                    .map(|(&t, &wt)| wt * f64::from(v[t * kv_row + kvh * hd + d]))
                    .sum();
                *od = (acc / sum) as f32;
            }
        }
    }
    out
}
