//! Sampler behaviour: greedy, seeds, top-k / top-p / min-p, penalties, temperature, logprobs.

use marlin_engine::sampler::{
    apply_penalties, argmax, token_logprob, top_logprobs, Sampler, SamplingParams,
};

/// A logits row with a clear order: token i has logit `base[i]`.
fn row() -> Vec<f32> {
    vec![0.5, 2.0, -1.0, 1.5, 3.0, 0.0, -3.0, 2.9]
}

fn sampled(params: &SamplingParams, logits: &[f32], n: usize) -> Vec<u32> {
    let mut s = Sampler::new(params);
    (0..n)
        .map(|_| s.sample(&mut logits.to_vec(), &[]))
        .collect()
}

fn hot(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        seed: Some(seed),
        ..SamplingParams::default()
    }
}

#[test]
fn default_is_greedy_argmax() {
    let p = SamplingParams::default();
    assert!(p.is_greedy());
    assert_eq!(sampled(&p, &row(), 5), [4; 5]);
    assert_eq!(argmax(&row()), 4);
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let a = sampled(&hot(7), &row(), 64);
    assert_eq!(a, sampled(&hot(7), &row(), 64));
    assert_ne!(a, sampled(&hot(8), &row(), 64));
    let distinct: std::collections::HashSet<_> = a.iter().collect();
    assert!(distinct.len() >= 3, "temperature 1 should explore: {a:?}");
}

#[test]
fn top_k_one_and_tiny_top_p_are_greedy() {
    let k1 = SamplingParams { top_k: 1, ..hot(1) };
    assert_eq!(sampled(&k1, &row(), 32), [4; 32]);
    let p0 = SamplingParams {
        top_p: 1e-6,
        ..hot(2)
    };
    assert_eq!(sampled(&p0, &row(), 32), [4; 32]);
}

#[test]
fn top_k_limits_the_support() {
    let p = SamplingParams { top_k: 2, ..hot(3) };
    let got = sampled(&p, &row(), 200);
    assert!(got.iter().all(|&t| t == 4 || t == 7), "{got:?}");
    assert!(got.contains(&4) && got.contains(&7));
}

#[test]
fn top_p_limits_the_support() {
    // probs: 4 → e^3, 7 → e^2.9, 1 → e^2 ...; the two best hold ~0.53 of the mass.
    let p = SamplingParams {
        top_p: 0.5,
        ..hot(4)
    };
    let got = sampled(&p, &row(), 200);
    assert!(got.iter().all(|&t| t == 4 || t == 7), "{got:?}");
}

#[test]
fn min_p_drops_unlikely_tokens() {
    // exp(x - 3) >= 0.3 keeps logits >= 3 + ln 0.3 ≈ 1.80: tokens 4, 7, 1.
    let p = SamplingParams {
        min_p: 0.3,
        ..hot(5)
    };
    let got = sampled(&p, &row(), 300);
    assert!(got.iter().all(|t| [4, 7, 1].contains(t)), "{got:?}");
    assert!(got.contains(&1));
}

#[test]
fn low_temperature_concentrates_high_temperature_spreads() {
    let cold = SamplingParams {
        temperature: 0.01,
        ..hot(6)
    };
    let n4 = sampled(&cold, &row(), 200)
        .iter()
        .filter(|&&t| t == 4)
        .count();
    // 3.0 vs 2.9 at T=0.01: odds e^10.
    assert!(n4 >= 198, "{n4}");
    let warm = SamplingParams {
        temperature: 5.0,
        ..hot(6)
    };
    let n4 = sampled(&warm, &row(), 400)
        .iter()
        .filter(|&&t| t == 4)
        .count();
    assert!(n4 < 150, "{n4}");
}

#[test]
fn empirical_frequencies_follow_softmax() {
    let logits = [1.0f32.ln(), 2.0f32.ln(), 5.0f32.ln()];
    let got = sampled(&hot(9), &logits, 8000);
    let f2 = got.iter().filter(|&&t| t == 2).count() as f64 / 8000.0;
    assert!((f2 - 0.625).abs() < 0.03, "{f2}");
}

#[test]
fn repetition_penalty_follows_llama_cpp() {
    let p = SamplingParams {
        repetition_penalty: 2.0,
        ..SamplingParams::default()
    };
    let mut l = vec![4.0, -1.0, 3.0];
    apply_penalties(&p, &mut l, &[0, 1, 0]);
    assert_eq!(l, [2.0, -2.0, 3.0]);
    // Greedy now picks token 2 instead of the repeated token 0.
    let mut s = Sampler::new(&p);
    assert_eq!(s.sample(&mut [4.0, -1.0, 3.0], &[0]), 2);
}

#[test]
fn presence_and_frequency_penalties_subtract() {
    let p = SamplingParams {
        presence_penalty: 0.5,
        frequency_penalty: 0.25,
        ..SamplingParams::default()
    };
    let mut l = vec![1.0, 1.0, 1.0];
    apply_penalties(&p, &mut l, &[0, 0, 0, 1]);
    assert_eq!(l, [1.0 - 0.75 - 0.5, 1.0 - 0.25 - 0.5, 1.0]);
}

#[test]
fn penalty_window_limits_history() {
    let p = SamplingParams {
        presence_penalty: 1.0,
        penalty_last_n: 2,
        ..SamplingParams::default()
    };
    let mut l = vec![0.0; 4];
    apply_penalties(&p, &mut l, &[0, 1, 2, 3]);
    assert_eq!(l, [0.0, 0.0, -1.0, -1.0]);
}

#[test]
fn non_finite_logits_do_not_break_sampling() {
    let mut l = vec![f32::NAN, f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY];
    assert_eq!(Sampler::new(&hot(1)).sample(&mut l, &[]), 2);
    let mut l = vec![0.0, f32::INFINITY, 1.0];
    assert_eq!(Sampler::new(&hot(1)).sample(&mut l, &[]), 1);
    let mut l = vec![f32::NEG_INFINITY; 3];
    assert_eq!(Sampler::new(&hot(1)).sample(&mut l, &[]), 0);
}

#[test]
fn logprobs_are_log_softmax() {
    let l = [0.0f32, 1.0, 2.0];
    let z: f64 = l.iter().map(|&x| f64::from(x).exp()).sum();
    let top = top_logprobs(&l, 2);
    assert_eq!(top.iter().map(|t| t.id).collect::<Vec<_>>(), [2, 1]);
    assert!((f64::from(top[0].logprob) - (2.0 - z.ln())).abs() < 1e-6);
    let lp0 = token_logprob(&l, 0).expect("in range");
    assert!((f64::from(lp0) + z.ln()).abs() < 1e-6);
    assert_eq!(token_logprob(&l, 3), None);
    assert_eq!(top_logprobs(&l, 10).len(), 3);
}

#[test]
fn validation_rejects_bad_values() {
    assert!(SamplingParams::default().validate().is_ok());
    for bad in [
        SamplingParams {
            temperature: -1.0,
            ..Default::default()
        },
        SamplingParams {
            temperature: f32::NAN,
            ..Default::default()
        },
        SamplingParams {
            top_p: 0.0,
            ..Default::default()
        },
        SamplingParams {
            min_p: 1.5,
            ..Default::default()
        },
        SamplingParams {
            repetition_penalty: 0.0,
            ..Default::default()
        },
        SamplingParams {
            presence_penalty: 3.0,
            ..Default::default()
        },
        SamplingParams {
            stop: vec![String::new()],
            ..Default::default()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(marlin_engine::Error::InvalidRequest(_))),
            "{bad:?}"
        );
    }
}
