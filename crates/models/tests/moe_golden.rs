//! MLA / MoE architectures against transformers: the tiny random-weight folders
//! `fixtures/tiny/{glm4_moe_lite, deepseek_v3, qwen3_moe}` (made by
//! `scripts/reference/make_tiny_moe_models.py`) must reproduce the golden logits of every
//! prompt position (whole-prompt prefill in the absorbed and the expanded MLA form, and
//! token-by-token decode through the paged cache) and the greedy continuation.

mod moe_common;

use marlin_models::Model;
use moe_common::{check_logits, forward_all, golden, load, tiny, Golden};

/// Token-by-token decode: one forward per token, each row against the golden row.
fn check_decode(name: &str, model: &Model, g: &Golden) {
    for p in &g.prompts {
        let mut rows = Vec::new();
        let mut kv = marlin_models::kv_cache::KvCache::for_tokens(&model.config, p.ids.len());
        let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
        for (i, &t) in p.ids.iter().enumerate() {
            let seq = marlin_models::SeqInput {
                tokens: &[t],
                start_pos: i,
                block_table: &table,
                logits: marlin_models::LogitsRequest::Last,
            };
            rows.push(model.forward(&[seq], &mut kv).unwrap().data);
        }
        check_logits(&format!("{name}/{} decode", p.name), &rows, &p.logits);
    }
}

fn greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        let rows = forward_all(model, &ids);
        let last = rows.last().unwrap();
        let best = (0..last.len())
            .max_by(|&a, &b| last[a].total_cmp(&last[b]).then(b.cmp(&a)))
            .unwrap();
        ids.push(best as u32);
    }
    ids[prompt.len()..].to_vec()
}

fn check_arch(name: &str) {
    let g = golden(name);
    let mut model = load(&tiny(name));
    for expanded_min in [usize::MAX, 1] {
        if let Some(m) = model.config.mla.as_mut() {
            m.expanded_min_tokens = expanded_min;
        }
        for p in &g.prompts {
            let rows = forward_all(&model, &p.ids);
            check_logits(
                &format!("{name}/{} (expanded from {expanded_min})", p.name),
                &rows,
                &p.logits,
            );
        }
        if model.config.mla.is_none() {
            break;
        }
    }
    check_decode(name, &model, &g);
    let got = greedy(
        &model,
        &g.prompts[g.greedy_prompt].ids,
        g.greedy_tokens.len(),
    );
    assert_eq!(got, g.greedy_tokens, "{name}: greedy tokens");
}

#[test]
fn glm4_moe_lite_matches_transformers() {
    check_arch("glm4_moe_lite");
}

#[test]
fn deepseek_v3_without_q_lora_matches_transformers() {
    check_arch("deepseek_v3");
}

#[test]
fn qwen3_moe_matches_transformers() {
    check_arch("qwen3_moe");
}

/// The absorbed form (decode) and the expanded form (prefill) give the same logits.
#[test]
fn absorbed_mla_equals_expanded_form() {
    let mut model = load(&tiny("glm4_moe_lite"));
    let ids: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 320).collect();
    let mut run = |min: usize| {
        model.config.mla.as_mut().unwrap().expanded_min_tokens = min;
        forward_all(&model, &ids)
    };
    let (absorbed, expanded) = (run(usize::MAX), run(1));
    let mut worst = 0f32;
    for (a, e) in absorbed.iter().zip(&expanded) {
        for (x, y) in a.iter().zip(e) {
            worst = worst.max((x - y).abs());
        }
    }
    let scale = expanded.iter().flatten().fold(1f32, |m, x| m.max(x.abs()));
    assert!(
        worst <= 1e-4 * scale,
        "absorbed vs expanded: max |Δ| {worst}"
    );
}

#[test]
fn blocks_are_loaded_with_the_right_kinds() {
    use marlin_models::blocks::{AttnWeights, FfnWeights};
    let m = load(&tiny("glm4_moe_lite"));
    assert_eq!(m.weights.blocks.len(), 3);
    assert!(m.weights.layers.is_empty());
    assert!(matches!(m.weights.blocks[0].ffn, FfnWeights::Dense(_)));
    let FfnWeights::Moe(moe) = &m.weights.blocks[1].ffn else {
        panic!("layer 1 is not MoE")
    };
    assert_eq!(moe.experts.len(), 8);
    assert!(moe.shared.is_some());
    assert_eq!(moe.correction_bias.as_ref().map(Vec::len), Some(8));
    let AttnWeights::Mla(mla) = &m.weights.blocks[2].attn else {
        panic!("not MLA")
    };
    assert_eq!(mla.k_b.len(), 4);
    assert_eq!(mla.k_b[0].shape, vec![32, 16]);
    assert_eq!(mla.k_up[0].shape, vec![16, 32]);
    assert_eq!(mla.v_b[0].shape, vec![12, 32]);
    let q = load(&tiny("qwen3_moe"));
    assert!(matches!(q.weights.blocks[0].ffn, FfnWeights::Dense(_)));
    assert!(matches!(q.weights.blocks[2].ffn, FfnWeights::Moe(_)));
    assert!(matches!(q.weights.blocks[0].attn, AttnWeights::Gqa(_)));
}

/// MLA / MoE models open on the GPU like any other (tests/mla_gpu.rs checks their logits).
#[test]
fn moe_models_open_on_the_gpu() {
    let m = load(&tiny("glm4_moe_lite"));
    match marlin_models::Device::open("gpu", &m) {
        Ok(d) => assert_ne!(d.name(), "cpu"),
        Err(e) => assert!(
            std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1"),
            "GPU open failed: {e}"
        ),
    }
}
