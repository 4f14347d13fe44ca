//! SmolLM2-135M (real weights) with FP8 E4M3 and INT8 KV caches against the F16 cache:
//! prompt logits and a few decode steps, plus the KV bytes per token of each dtype.
//! Skipped with a note when the model file is absent.

use marlin_models::kv_cache::{KvCache, KvDtype};
use marlin_models::{LogitsRequest, Model, SeqInput};

/// Allowed (max, mean) |Δlogit| against the F16 cache (logits span ~±25 on this model; the
/// CPU path's own 8-bit activations move logits by up to ~2 against f32, real_golden.rs).
const TOL: [(KvDtype, (f32, f64)); 2] =
    [(KvDtype::Int8, (3.0, 0.4)), (KvDtype::Fp8E4M3, (6.0, 1.0))];
/// Rows whose F16 top-1 leads by more than this must keep their top-1.
const MARGIN: f32 = 1.0;

fn argmax(r: &[f32]) -> usize {
    (0..r.len()).fold(0, |b, i| if r[i] > r[b] { i } else { b })
}

const STEPS: usize = 4;

/// All prompt logits, then the logits of [`STEPS`] decode steps fed `feed` (or, when empty,
/// this run's own greedy tokens); returns the rows and the tokens fed.
fn run(model: &Model, dtype: KvDtype, prompt: &[u32], feed: &[u32]) -> (Vec<Vec<f32>>, Vec<u32>) {
    let mut kv = KvCache::with_dtype(&model.config, 4, dtype).unwrap();
    assert_eq!(kv.dtype(), dtype);
    let table = [2u32, 0, 3, 1];
    let step = |kv: &mut KvCache, tokens: &[u32], start_pos, logits| {
        let seq = SeqInput {
            tokens,
            start_pos,
            block_table: &table,
            logits,
        };
        model.forward(&[seq], kv).unwrap()
    };
    let l = step(&mut kv, prompt, 0, LogitsRequest::All);
    let mut rows: Vec<Vec<f32>> = (0..l.rows()).map(|r| l.row(r).to_vec()).collect();
    let mut fed = Vec::new();
    for i in 0..STEPS {
        let t = feed
            .get(i)
            .copied()
            .unwrap_or(argmax(&rows[rows.len() - 1]) as u32);
        fed.push(t);
        let l = step(&mut kv, &[t], prompt.len() + i, LogitsRequest::Last);
        rows.push(l.row(0).to_vec());
    }
    (rows, fed)
}

#[test]
fn smollm2_quantized_kv_matches_f16() {
    let path = match marlin_models::source::resolve_model("default") {
        Ok(p) if p.is_file() => p,
        _ => {
            eprintln!("note: SmolLM2 not found; skipping (run scripts/fetch-models.sh)");
            return;
        }
    };
    let model = Model::load(&path, &mut |_, _| {}).unwrap();
    let c = &model.config;
    assert_eq!((c.n_layers, c.n_kv_heads, c.head_dim), (30, 3, 64));
    assert_eq!(KvCache::bytes_per_token_dtype(c, KvDtype::F16), 23_040);
    assert_eq!(
        KvCache::bytes_per_token_dtype(c, KvDtype::F16),
        KvCache::bytes_per_token(c)
    );
    assert_eq!(KvCache::bytes_per_token_dtype(c, KvDtype::Int8), 12_240);
    assert_eq!(KvCache::bytes_per_token_dtype(c, KvDtype::Fp8E4M3), 12_240);

    let prompt = model
        .tokenizer
        .encode(
            "The quick brown fox jumps over the lazy dog. Paged attention stores keys and values in blocks of sixteen tokens, so",
            false,
        )
        .unwrap();
    assert!(prompt.len() > 16, "prompt spans more than one block");
    let (want, feed) = run(&model, KvDtype::F16, &prompt, &[]);
    for (dtype, tol) in TOL {
        let (got, _) = run(&model, dtype, &prompt, &feed);
        assert_eq!(got.len(), want.len());
        let (mut worst, mut sum, mut agree, mut decided, mut decided_agree) = (0f32, 0f64, 0, 0, 0);
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                worst = worst.max((a - b).abs());
                sum += f64::from((a - b).abs());
            }
            let same = argmax(g) == argmax(w);
            agree += usize::from(same);
            if margin(w) > MARGIN {
                decided += 1;
                decided_agree += usize::from(same);
            }
        }
        eprintln!(
            "{dtype:?} KV vs F16 KV: max |Δlogit| {worst:.3}, mean {:.4}, top-1 agrees {agree}/{} \
             rows ({decided_agree}/{decided} where F16's top-1/top-2 margin > {MARGIN})",
            sum / (want.len() * want[0].len()) as f64,
            want.len()
        );
        assert!(worst < tol.0, "{dtype:?}: max |Δ| {worst} ≥ {}", tol.0);
        assert!(
            sum / ((want.len() * want[0].len()) as f64) < tol.1,
            "{dtype:?}: mean |Δ|"
        );
        assert_eq!(decided_agree, decided, "{dtype:?}: a decided top-1 changed");
        assert!(
            agree * 4 >= want.len() * 3,
            "{dtype:?}: top-1 {agree}/{}",
            want.len()
        );
    }
}

/// Top-1 minus top-2 logit.
fn margin(r: &[f32]) -> f32 {
    let i = argmax(r);
    let second = r
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .fold(f32::NEG_INFINITY, |m, (_, &x)| m.max(x));
    r[i] - second
}
