//! Candidate filters: top-k, top-p (nucleus) and min-p over `(token, logit)` pairs.
//!
//! Candidates are kept sorted by logit, highest first (ties: lower id first) once a filter
//! needs order; top-p sorts only as deep as the nucleus reaches.

use std::cmp::Ordering;

/// A candidate token and its logit.
pub(crate) type Cand = (u32, f32);

fn desc(a: &Cand, b: &Cand) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The index of the largest finite-or-infinite logit (NaN ignored; 0 when none).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

/// Keep the `k` highest (0 or ≥ len: no-op). Leaves the kept ones sorted.
pub(crate) fn top_k(c: &mut Vec<Cand>, k: usize) -> bool {
    if k == 0 || k >= c.len() {
        return false;
    }
    c.select_nth_unstable_by(k - 1, desc);
    c.truncate(k);
    c.sort_unstable_by(desc);
    true
}

/// Keep the smallest prefix (by probability) whose mass reaches `p`; `sorted` says whether
/// `c` is already sorted. Leaves the kept ones sorted.
pub(crate) fn top_p(c: &mut Vec<Cand>, p: f32, sorted: bool) {
    if p >= 1.0 || c.len() <= 1 {
        return;
    }
    let max = c.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
    let total: f64 = c.iter().map(|x| f64::from(x.1 - max).exp()).sum();
    let target = f64::from(p) * total;
    let mut done = if sorted { c.len() } else { 0 };
    let mut acc = 0.0f64;
    let mut i = 0;
    // Sort in growing chunks: the nucleus is usually small.
    let mut chunk = 64usize;
    while i < c.len() {
        if i == done {
            let end = (done + chunk).min(c.len());
            if end < c.len() {
                c[done..].select_nth_unstable_by(end - done - 1, desc);
            }
            c[done..end].sort_unstable_by(desc);
            done = end;
            chunk *= 4;
        }
        acc += f64::from(c[i].1 - max).exp();
        i += 1;
        if acc >= target {
            break;
        }
    }
    c.truncate(i.max(1));
}

/// Drop tokens whose probability is below `min_p` × the highest (order-preserving).
pub(crate) fn min_p(c: &mut Vec<Cand>, min_p: f32) {
    if min_p <= 0.0 || c.len() <= 1 {
        return;
    }
    let max = c.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
    let threshold = max + min_p.ln();
    c.retain(|x| x.1 >= threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(l: &[f32]) -> Vec<Cand> {
        l.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect()
    }

    #[test]
    fn top_p_keeps_smallest_reaching_prefix() {
        // probs ∝ 8, 4, 2, 1, 1 (of 16)
        let l: Vec<f32> = [8.0f32, 4.0, 2.0, 1.0, 1.0]
            .iter()
            .map(|x| x.ln())
            .collect();
        for (p, want) in [(0.5, 1), (0.51, 2), (0.75, 2), (0.76, 3), (0.99, 5)] {
            let mut c = cands(&l);
            top_p(&mut c, p, false);
            assert_eq!(c.len(), want, "p={p}");
            assert_eq!(c[0].0, 0);
        }
    }

    #[test]
    fn top_p_sorts_past_the_first_chunk() {
        // 300 equal tokens: the nucleus for p=0.9 is 270 of them.
        let mut c = cands(&vec![0.0; 300]);
        top_p(&mut c, 0.9, false);
        assert_eq!(c.len(), 270);
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0), "ties sorted by id");
    }

    #[test]
    fn min_p_threshold_is_relative_to_the_best() {
        let l: Vec<f32> = [1.0f32, 0.5, 0.2, 0.05].iter().map(|x| x.ln()).collect();
        let mut c = cands(&l);
        min_p(&mut c, 0.2);
        assert_eq!(c.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn argmax_ignores_nan_and_prefers_first() {
        assert_eq!(argmax(&[f32::NAN, 1.0, 3.0, 3.0, -1.0]), 2);
        assert_eq!(argmax(&[]), 0);
    }
}
