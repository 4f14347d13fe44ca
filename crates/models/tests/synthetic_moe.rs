//! Synthetic GLM-4.7-Flash-shaped models (`synthetic:glm47-flash:FORMAT`, MLA + MoE): the
//! preset's config and latent KV size, and a toy-sized variant with the same structure that
//! builds and runs on the CPU in several formats (prefill in both MLA forms, then decode).

use marlin_models::blocks::{AttnWeights, FfnWeights};
use marlin_models::config::Arch;
use marlin_models::kv_cache::KvCache;
use marlin_models::synthetic::SyntheticSpec;
use marlin_models::{LogitsRequest, Model, SeqInput};

#[test]
fn glm47_flash_preset_has_the_real_shapes() {
    let s = SyntheticSpec::parse("synthetic:glm47-flash:q4_k").unwrap();
    let c = s.preset.config();
    c.validate().unwrap();
    assert_eq!(c.arch, Arch::Deepseek2);
    assert_eq!(
        (c.hidden, c.n_layers, c.n_heads, c.vocab),
        (2048, 47, 20, 154_880)
    );
    let m = c.mla.as_ref().unwrap();
    assert_eq!(
        (
            m.q_lora_rank,
            m.kv_lora_rank,
            m.qk_nope_head_dim,
            m.qk_rope_head_dim,
            m.v_head_dim
        ),
        (Some(768), 512, 192, 64, 256)
    );
    let e = c.moe.as_ref().unwrap();
    assert_eq!(
        (e.n_experts, e.top_k, e.expert_ffn, e.shared_ffn),
        (64, 4, 1536, 1536)
    );
    assert_eq!(e.sparse_layers.iter().filter(|&&x| x).count(), 46);
    assert!(!e.sparse_layers[0]);
    assert_eq!(KvCache::bytes_per_token(&c), 47 * 576 * 2);
}

fn logits(m: &Model, kv: &mut KvCache, tokens: &[u32], start: usize, table: &[u32]) -> Vec<f32> {
    let seq = SeqInput {
        tokens,
        start_pos: start,
        block_table: table,
        logits: LogitsRequest::Last,
    };
    m.forward(&[seq], kv).unwrap().data
}

fn run_tiny(format: &str) {
    let spec = format!("synthetic:glm47-tiny:{format}");
    let mut m = Model::load_spec(&spec, &mut |_, _| {}).unwrap();
    assert_eq!(m.weights.blocks.len(), 3);
    assert!(matches!(m.weights.blocks[0].ffn, FfnWeights::Dense(_)));
    let FfnWeights::Moe(moe) = &m.weights.blocks[1].ffn else {
        panic!("layer 1 is not MoE")
    };
    assert_eq!(moe.experts.len(), 8);
    let AttnWeights::Mla(mla) = &m.weights.blocks[1].attn else {
        panic!("not MLA")
    };
    assert_eq!(mla.k_b[0].shape, vec![64, 64]);
    assert!(m.weight_bytes() > 0);

    let prompt: Vec<u32> = (0..20).map(|i| (i * 53 + 7) % 1024).collect();
    let table: Vec<u32> = vec![1, 0];
    let mut forms = Vec::new();
    for min in [usize::MAX, 1] {
        m.config.mla.as_mut().unwrap().expanded_min_tokens = min;
        let mut kv = KvCache::new(&m.config, 2);
        forms.push(logits(&m, &mut kv, &prompt, 0, &table));
        if min == 1 {
            // Decode two more tokens after the expanded prefill (absorbed form).
            m.config.mla.as_mut().unwrap().expanded_min_tokens = usize::MAX;
            let d1 = logits(&m, &mut kv, &[5], 20, &table);
            let d2 = logits(&m, &mut kv, &[9], 21, &table);
            assert!(d1.iter().chain(&d2).all(|x| x.is_finite()));
            assert_ne!(d1, d2);
        }
    }
    // Random routers sit near ties, so the two forms' rounding may pick other experts: each
    // form is checked on its own here (their equality is tested on the golden fixtures).
    for f in &forms {
        assert_eq!(f.len(), 1024);
        assert!(f.iter().all(|x| x.is_finite()));
        let spread = f.iter().fold(0f32, |s, x| s.max(x.abs()));
        assert!(spread > 1e-3, "{format}: flat logits {spread}");
    }
}

#[test]
fn glm47_tiny_q4_0_builds_and_runs() {
    run_tiny("q4_0");
}

#[test]
fn glm47_tiny_q8_0_builds_and_runs() {
    run_tiny("q8_0");
}

#[test]
fn glm47_tiny_trellis3_builds_and_runs() {
    run_tiny("trellis3");
}

#[test]
fn glm47_tiny_f16_builds_and_runs() {
    run_tiny("f16");
}

/// The full model (~17 GB in q4_0): run with `--ignored` on a machine with the memory.
#[test]
#[ignore = "allocates ~17 GB"]
fn glm47_flash_q4_0_builds_and_decodes() {
    let t = std::time::Instant::now();
    let m = Model::load_spec("synthetic:glm47-flash:q4_0", &mut |_, _| {}).unwrap();
    eprintln!(
        "built in {:.1} s, {} bytes read per token",
        t.elapsed().as_secs_f64(),
        m.weight_bytes()
    );
    let mut kv = KvCache::new(&m.config, 1);
    let out = logits(&m, &mut kv, &[1, 2, 3], 0, &[0]);
    assert_eq!(out.len(), 154_880);
    assert!(out.iter().all(|x| x.is_finite()));
}

/// GLM-4.7-Flash's real dims with two layers (one dense, one with 64 + 1 experts), ~0.9 GB
/// in q4_k: every real shape (K-quant fallbacks on 192-wide W_UKᵀ, 576-wide latent rows)
/// builds and decodes. Run with `--ignored`.
#[test]
#[ignore = "allocates ~0.9 GB"]
fn glm47_flash_two_layers_q4_k_run() {
    let mut p = *marlin_models::synthetic::Preset::by_name("glm47-flash").unwrap();
    p.n_layers = 2;
    let t = std::time::Instant::now();
    let m =
        marlin_models::synthetic::build_preset(&p, marlin_core::QuantFormat::Q4_K, &mut |_, _| {})
            .unwrap();
    eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
    let FfnWeights::Moe(moe) = &m.weights.blocks[1].ffn else {
        panic!("layer 1 is not MoE")
    };
    assert_eq!(moe.experts.len(), 64);
    assert_eq!(moe.experts[0].down.shape, vec![2048, 1536]);
    let AttnWeights::Mla(mla) = &m.weights.blocks[1].attn else {
        panic!("not MLA")
    };
    assert_eq!(mla.k_b.len(), 20);
    assert_eq!(mla.k_b[0].shape, vec![512, 192]);
    assert_eq!(mla.v_b[0].shape, vec![256, 512]);
    let mut kv = KvCache::new(&m.config, 1);
    let t = std::time::Instant::now();
    let a = logits(&m, &mut kv, &[1, 2, 3, 4], 0, &[0]);
    let b = logits(&m, &mut kv, &[5], 4, &[0]);
    eprintln!("prefill 4 + decode 1 in {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(a.len(), 154_880);
    assert!(a.iter().chain(&b).all(|x| x.is_finite()));
    assert_ne!(a, b);
}
