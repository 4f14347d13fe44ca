//! The MLA / MoE tiny models through the engine (block allocation, chunked prompt, decode
//! loop) against the transformers goldens of `fixtures/tiny/{glm4_moe_lite, qwen3_moe}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_models::forward::LogitsRequest;
use marlin_models::Model;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn check(name: &str) {
    let dir = fixture(name);
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let model = Arc::new(Model::load(&dir, &mut |_, _| {}).unwrap());
    let mut engine = Engine::new(model, 64);
    for p in g["prompts"].as_array().unwrap() {
        let prompt = ids(&p["ids"]);
        let logits = engine.prompt_logits(&prompt, LogitsRequest::All).unwrap();
        let want = p["logits"].as_array().unwrap();
        let scale = want
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|x| x.as_f64().unwrap().abs())
            .fold(1.0, f64::max);
        let mut worst = 0f64;
        for (pos, row) in want.iter().enumerate() {
            for (i, x) in row.as_array().unwrap().iter().enumerate() {
                worst = worst.max((f64::from(logits.row(pos)[i]) - x.as_f64().unwrap()).abs());
            }
        }
        assert!(
            worst <= 1e-3 * scale,
            "{name}: max |Δ| {worst} (scale {scale})"
        );
    }
    let prompt = ids(&g["prompts"][g["greedy"]["prompt"].as_u64().unwrap() as usize]["ids"]);
    let want = ids(&g["greedy"]["tokens"]);
    let params = SamplingParams {
        max_tokens: want.len(),
        ignore_eos: true,
        ..Default::default()
    };
    let out = engine.generate(&prompt, &params, &mut |_| {}).unwrap();
    assert_eq!(out.token_ids, want, "{name}: greedy tokens");
}

#[test]
fn glm4_moe_lite_through_the_engine() {
    check("glm4_moe_lite");
}

#[test]
fn qwen3_moe_through_the_engine() {
    check("qwen3_moe");
}
