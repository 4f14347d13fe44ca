//! Golden tests for every architecture without a small real model: tiny random-weight Hugging
//! Face folders (`fixtures/tiny/<arch>`) checked against full logits and greedy tokens from
//! transformers (made by `scripts/reference/make_tiny_models.py`).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_models::forward::LogitsRequest;
use marlin_models::Model;
use serde_json::Value;

type TestResult = Result<(), Box<dyn Error>>;

/// Relative tolerance: max |Δ| ≤ REL_TOL × max(1, max |golden logit|) per prompt.
const REL_TOL: f32 = 1e-3;

/// One prompt of a golden file: its token ids and transformers' logits at every position.
struct GoldenPrompt {
    name: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

/// A parsed `golden.json`.
struct Golden {
    prompts: Vec<GoldenPrompt>,
    greedy_prompt: usize,
    greedy_tokens: Vec<u32>,
}

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("token id list")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("token id")).expect("token id fits u32"))
        .collect()
}

fn load_golden(dir: &Path) -> Result<Golden, Box<dyn Error>> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json"))?)?;
    let prompts = v["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .map(|p| GoldenPrompt {
            name: p["name"].as_str().expect("prompt name").to_owned(),
            ids: ids(&p["ids"]),
            logits: p["logits"]
                .as_array()
                .expect("logits rows")
                .iter()
                .map(|row| {
                    row.as_array()
                        .expect("logits row")
                        .iter()
                        .map(|x| x.as_f64().expect("logit") as f32)
                        .collect()
                })
                .collect(),
        })
        .collect();
    Ok(Golden {
        prompts,
        greedy_prompt: v["greedy"]["prompt"].as_u64().expect("greedy prompt") as usize,
        greedy_tokens: ids(&v["greedy"]["tokens"]),
    })
}

/// Index of the largest value (the first one on ties).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

fn check_prompt(arch: &str, engine: &mut Engine, p: &GoldenPrompt) -> TestResult {
    let logits = engine.prompt_logits(&p.ids, LogitsRequest::All)?;
    assert_eq!(logits.rows(), p.ids.len(), "{arch}/{}: logit rows", p.name);
    let max_abs = p
        .logits
        .iter()
        .flatten()
        .fold(0.0f32, |m, &x| m.max(x.abs()));
    let tol = REL_TOL * max_abs.max(1.0);
    let (mut worst, mut worst_at) = (0.0f32, (0, 0));
    for (pos, want) in p.logits.iter().enumerate() {
        let got = logits.row(pos);
        assert_eq!(got.len(), want.len(), "{arch}/{}: vocab size", p.name);
        for (tok, (&g, &w)) in got.iter().zip(want).enumerate() {
            let d = (g - w).abs();
            if d > worst || d.is_nan() {
                worst = d;
                worst_at = (pos, tok);
            }
        }
        assert_eq!(
            argmax(got),
            argmax(want),
            "{arch}/{}: top-1 differs at position {pos}",
            p.name
        );
    }
    assert!(
        worst <= tol,
        "{arch}/{}: max |Δ| {worst} > {tol} at position {} token {}",
        p.name,
        worst_at.0,
        worst_at.1
    );
    Ok(())
}

fn check_arch(arch: &str) -> TestResult {
    let dir = fixture_dir(arch);
    let golden = load_golden(&dir)?;
    let model = Arc::new(Model::load(&dir, &mut |_, _| {})?);
    let mut engine = Engine::new(model, 64);
    for p in &golden.prompts {
        check_prompt(arch, &mut engine, p)?;
    }
    let prompt = &golden.prompts[golden.greedy_prompt].ids;
    let params = SamplingParams {
        max_tokens: golden.greedy_tokens.len(),
        ignore_eos: true,
        ..Default::default()
    };
    let out = engine.generate(prompt, &params, &mut |_| {})?;
    assert_eq!(out.token_ids, golden.greedy_tokens, "{arch}: greedy tokens");
    Ok(())
}

#[test]
fn llama_matches_transformers() -> TestResult {
    check_arch("llama")
}

#[test]
fn llama3_rope_scaling_matches_transformers() -> TestResult {
    check_arch("llama3")
}

#[test]
fn mistral_matches_transformers() -> TestResult {
    check_arch("mistral")
}

#[test]
fn qwen2_matches_transformers() -> TestResult {
    check_arch("qwen2")
}

#[test]
fn qwen3_matches_transformers() -> TestResult {
    check_arch("qwen3")
}

#[test]
fn gemma3_matches_transformers() -> TestResult {
    check_arch("gemma3")
}

/// The fixtures themselves are sane: every prompt has a logits row per token, and the golden
/// values are not flat (so a broken forward cannot pass by accident).
#[test]
fn fixtures_are_well_formed() -> TestResult {
    for arch in ["llama", "llama3", "mistral", "qwen2", "qwen3", "gemma3"] {
        let g = load_golden(&fixture_dir(arch))?;
        assert_eq!(g.prompts.len(), 3, "{arch}");
        assert_eq!(g.greedy_tokens.len(), 8, "{arch}");
        for p in &g.prompts {
            assert!((12..=24).contains(&p.ids.len()), "{arch}/{}", p.name);
            assert_eq!(p.logits.len(), p.ids.len(), "{arch}/{}", p.name);
            for row in &p.logits {
                assert_eq!(row.len(), 320, "{arch}/{}", p.name);
                let (lo, hi) = row
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                assert!(hi - lo > 1.0, "{arch}/{}: flat logits", p.name);
            }
        }
    }
    Ok(())
}
