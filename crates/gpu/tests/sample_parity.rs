//! GPU sampling (`sample_cands` + `sample_pick`) against the CPU sampler's chain: greedy
//! settings equal argmax, sampled frequencies over many seeds match the CPU distribution
//! (top-k → top-p → min-p → temperature), draws are reproducible per (seed, counter).
//! Runs on lavapipe (see testkit for the skip rule).

mod testkit;

use marlin_gpu::{
    read_bytes, record_sample, sample_scratch_words, storage_f32, upload_f32, upload_sampling,
    GpuContext, GpuSampling, SampleIo, Span, StepEncoder,
};
use testkit::{random_vec, rng};

/// Sample every row of `x` (`rows` rows of `n`) with its settings; the ids.
fn sample(ctx: &GpuContext, x: &[f32], n: usize, settings: &[GpuSampling]) -> Vec<u32> {
    let rows = settings.len();
    assert_eq!(x.len(), rows * n);
    // Two floats of head room before x: the launcher's offsets are exercised.
    let mut padded = vec![7.0f32; 2];
    padded.extend_from_slice(x);
    let xb = upload_f32(ctx, &padded).expect("x");
    let sb = upload_sampling(ctx, settings).expect("settings");
    let scratch = storage_f32(ctx, sample_scratch_words(rows, n)).expect("scratch");
    let out = upload_f32(ctx, &vec![f32::from_bits(0xDEAD_BEEF); rows + 2]).expect("out");
    let mut enc = StepEncoder::new(ctx, "t");
    let io = SampleIo {
        x: Span::new(&xb, 2),
        settings: Span::whole(&sb),
        scratch: &scratch,
        out: Span::new(&out, 1),
    };
    record_sample(&mut enc, &io, rows, n, n).expect("record");
    enc.submit().expect("submit");
    let all: Vec<u32> =
        bytemuck::pod_collect_to_vec(&read_bytes(ctx, &out, 0, (rows as u64 + 2) * 4).unwrap());
    assert_eq!(all[0], 0xDEAD_BEEF, "guard before");
    assert_eq!(all[rows + 1], 0xDEAD_BEEF, "guard after");
    all[1..=rows].to_vec()
}

/// The CPU sampler's probabilities (engine `Sampler`: top-k, top-p, min-p, temperature).
fn cpu_probs(l: &[f32], s: &GpuSampling) -> Vec<f64> {
    let mut c: Vec<(usize, f32)> = l
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| (i, v))
        .collect();
    c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if s.top_k > 0 && (s.top_k as usize) < c.len() {
        c.truncate(s.top_k as usize);
    }
    let max = c[0].1;
    if s.top_p < 1.0 {
        let total: f64 = c.iter().map(|x| f64::from(x.1 - max).exp()).sum();
        let (mut acc, mut keep) = (0.0, 0);
        for x in &c {
            acc += f64::from(x.1 - max).exp();
            keep += 1;
            if acc >= f64::from(s.top_p) * total {
                break;
            }
        }
        c.truncate(keep);
    }
    if s.min_p > 0.0 {
        let t = max + s.min_p.ln();
        c.retain(|x| x.1 >= t);
    }
    let inv_t = 1.0 / f64::from(s.temperature);
    let total: f64 = c.iter().map(|x| (f64::from(x.1 - max) * inv_t).exp()).sum();
    let mut p = vec![0.0; l.len()];
    for x in &c {
        p[x.0] = (f64::from(x.1 - max) * inv_t).exp() / total;
    }
    p
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] || l[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

fn sampling(temperature: f32, top_k: u32, top_p: f32, min_p: f32) -> GpuSampling {
    GpuSampling {
        temperature,
        top_k,
        top_p,
        min_p,
        seed: 0x1234_5678_9ABC,
        counter: 0,
    }
}

/// `draws` samples of `l` (one row per seed); checks every token's frequency against
/// `want` within 4.5 standard deviations (+ 0.002).
fn check_distribution(ctx: &GpuContext, l: &[f32], s: GpuSampling, draws: usize, what: &str) {
    let n = l.len();
    let want = cpu_probs(l, &s);
    let x: Vec<f32> = (0..draws).flat_map(|_| l.iter().copied()).collect();
    let rows: Vec<GpuSampling> = (0..draws)
        .map(|i| GpuSampling {
            seed: 1000 + i as u64 * 7919,
            counter: i as u32 % 3,
            ..s
        })
        .collect();
    let ids = sample(ctx, &x, n, &rows);
    let mut freq = vec![0usize; n];
    for &id in &ids {
        freq[id as usize] += 1;
    }
    for (i, (&f, &p)) in freq.iter().zip(&want).enumerate() {
        let got = f as f64 / draws as f64;
        let sd = (p * (1.0 - p) / draws as f64).sqrt();
        assert!(
            (got - p).abs() <= 4.5 * sd + 0.002,
            "{what}: token {i}: frequency {got:.4}, CPU probability {p:.4}"
        );
    }
}

#[test]
fn greedy_settings_equal_argmax() {
    let Some(ctx) = testkit::ctx() else { return };
    // 3 chunks of the vocabulary; row 1 has its maximum in the last chunk, row 2 ties.
    let (rows, n) = (3, 9000);
    let mut r = rng(5);
    let mut x = random_vec(&mut r, rows * n);
    x[n + 8999] = 3.0;
    x[2 * n + 17] = 4.0;
    x[2 * n + 5000] = 4.0;
    x[2 * n + 3] = f32::NAN;
    let want: Vec<u32> = x.chunks(n).map(argmax).collect();
    assert_eq!(want[1], 8999);
    assert_eq!(want[2], 17);
    for s in [sampling(0.0, 0, 1.0, 0.0), sampling(0.8, 1, 0.9, 0.1)] {
        let got = sample(ctx, &x, n, &vec![s; rows]);
        assert_eq!(got, want, "{s:?}");
    }
}

#[test]
fn frequencies_match_the_cpu_distribution() {
    let Some(ctx) = testkit::ctx() else { return };
    let mut r = rng(11);
    // 48 tokens: a few likely ones over a spread tail, one NaN and one −∞ (never drawn).
    let mut l: Vec<f32> = random_vec(&mut r, 48).iter().map(|v| v * 2.0).collect();
    l[7] = 2.5;
    l[30] = 2.2;
    l[41] = 1.9;
    l[12] = f32::NAN;
    l[13] = f32::NEG_INFINITY;
    let cases = [
        ("temperature 1", sampling(1.0, 0, 1.0, 0.0)),
        ("temperature 0.7, top-k 5", sampling(0.7, 5, 1.0, 0.0)),
        ("top-p 0.6", sampling(1.0, 0, 0.6, 0.0)),
        ("temperature 1.3, min-p 0.2", sampling(1.3, 0, 1.0, 0.2)),
        ("all filters", sampling(0.8, 10, 0.8, 0.05)),
    ];
    for (what, s) in cases {
        check_distribution(ctx, &l, s, 2000, what);
    }
}

/// More tokens than candidates, spread over chunks: the race over every chunk's winner.
#[test]
fn wide_vocabulary_without_filters_matches() {
    let Some(ctx) = testkit::ctx() else { return };
    let n = 5000;
    let mut l = vec![0.0f32; n];
    // Four strong tokens in both chunks, mass ≈ e^6 each against 4996 of e^0.
    for &i in &[5, 4100, 4101, 4999] {
        l[i] = 6.0;
    }
    let s = sampling(1.0, 0, 1.0, 0.0);
    let want = cpu_probs(&l, &s);
    let draws = 1000;
    let x: Vec<f32> = (0..draws).flat_map(|_| l.iter().copied()).collect();
    let rows: Vec<GpuSampling> = (0..draws)
        .map(|i| GpuSampling {
            seed: i as u64,
            ..s
        })
        .collect();
    let ids = sample(ctx, &x, n, &rows);
    for &i in &[5u32, 4100, 4101, 4999] {
        let got = ids.iter().filter(|&&id| id == i).count() as f64 / draws as f64;
        let p = want[i as usize];
        let sd = (p * (1.0 - p) / draws as f64).sqrt();
        assert!((got - p).abs() < 4.5 * sd, "token {i}: {got:.4} vs {p:.4}");
    }
    let rest = ids
        .iter()
        .filter(|&&id| ![5, 4100, 4101, 4999].contains(&id));
    let distinct: std::collections::BTreeSet<_> = rest.collect();
    assert!(distinct.len() > 50, "tail draws spread: {}", distinct.len());
}

#[test]
fn draws_are_reproducible_per_seed_and_counter() {
    let Some(ctx) = testkit::ctx() else { return };
    let n = 300;
    let l: Vec<f32> = random_vec(&mut rng(3), n);
    let base = sampling(1.0, 50, 0.95, 0.0);
    let rows: Vec<GpuSampling> = (0..64)
        .map(|i| GpuSampling {
            seed: 42,
            counter: i,
            ..base
        })
        .collect();
    let x: Vec<f32> = (0..rows.len()).flat_map(|_| l.iter().copied()).collect();
    let a = sample(ctx, &x, n, &rows);
    let b = sample(ctx, &x, n, &rows);
    assert_eq!(a, b, "same seeds, same draws");
    let distinct: std::collections::BTreeSet<_> = a.iter().collect();
    assert!(distinct.len() > 10, "counters give fresh draws: {a:?}");
    let other: Vec<GpuSampling> = rows
        .iter()
        .map(|r| GpuSampling { seed: 43, ..*r })
        .collect();
    assert_ne!(sample(ctx, &x, n, &other), a, "another seed, other draws");
}

#[test]
fn infinite_logit_wins_and_bad_settings_are_errors() {
    let Some(ctx) = testkit::ctx() else { return };
    let mut l = vec![0.0f32; 100];
    l[9] = f32::INFINITY;
    l[3] = f32::NAN;
    let got = sample(ctx, &l, 100, &[sampling(1.0, 0, 1.0, 0.0)]);
    assert_eq!(got, [9]);
    for bad in [
        sampling(f32::NAN, 0, 1.0, 0.0),
        sampling(1.0, 0, 0.0, 0.0),
        sampling(1.0, 0, 1.0, 1.5),
    ] {
        assert!(upload_sampling(ctx, &[bad]).is_err(), "{bad:?}");
    }
    let xb = upload_f32(ctx, &l).expect("x");
    let sb = upload_sampling(ctx, &[sampling(1.0, 0, 1.0, 0.0)]).expect("s");
    let scratch = storage_f32(ctx, 8).expect("scratch");
    let io = SampleIo {
        x: Span::whole(&xb),
        settings: Span::whole(&sb),
        scratch: &scratch,
        out: Span::whole(&xb),
    };
    let mut enc = StepEncoder::new(ctx, "t");
    assert!(
        record_sample(&mut enc, &io, 1, 100, 100).is_err(),
        "scratch too small"
    );
    assert!(
        record_sample(&mut enc, &io, 1, 100, 50).is_err(),
        "stride < n"
    );
}
