//! Config handling of the MLA / MoE architectures: GLM-4.7-Flash's real `config.json` values
//! (digest §7.3), the latent KV size per token, DeepSeek-V3 group routing, Qwen3-MoE dense
//! layers, and clear errors for what is not supported.

use marlin_models::config::{Arch, Scoring};
use marlin_models::kv_cache::KvCache;
use marlin_models::load::hf_config::config_from_hf;
use serde_json::{json, Value};

fn glm47_flash() -> Value {
    json!({
        "architectures": ["Glm4MoeLiteForCausalLM"],
        "model_type": "glm4_moe_lite",
        "hidden_size": 2048,
        "num_hidden_layers": 47,
        "num_attention_heads": 20,
        "num_key_value_heads": 20,
        "q_lora_rank": 768,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 192,
        "qk_rope_head_dim": 64,
        "v_head_dim": 256,
        "vocab_size": 154880,
        "intermediate_size": 10240,
        "moe_intermediate_size": 1536,
        "n_routed_experts": 64,
        "num_experts_per_tok": 4,
        "n_shared_experts": 1,
        "n_group": 1,
        "topk_group": 1,
        "routed_scaling_factor": 1.8,
        "norm_topk_prob": true,
        "topk_method": "noaux_tc",
        "first_k_dense_replace": 1,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "rope_scaling": null,
        "rope_interleave": true,
        "max_position_embeddings": 202752,
        "attention_bias": false,
        "tie_word_embeddings": false
    })
}

#[test]
fn glm47_flash_config() {
    let c = config_from_hf(&glm47_flash()).unwrap();
    assert_eq!(c.arch, Arch::Deepseek2);
    let m = c.mla.as_ref().unwrap();
    assert_eq!(m.q_lora_rank, Some(768));
    assert_eq!(
        (
            m.kv_lora_rank,
            m.qk_nope_head_dim,
            m.qk_rope_head_dim,
            m.v_head_dim
        ),
        (512, 192, 64, 256)
    );
    assert_eq!(c.head_dim, 256);
    assert_eq!(c.rope.n_rot, 64);
    assert!((c.attn_scale - 1.0 / 16.0).abs() < 1e-7);
    let e = c.moe.as_ref().unwrap();
    assert_eq!(
        (e.n_experts, e.top_k, e.expert_ffn, e.shared_ffn),
        (64, 4, 1536, 1536)
    );
    assert_eq!(e.scoring, Scoring::Sigmoid);
    assert!(e.norm_topk_prob);
    assert!((e.routed_scale - 1.8).abs() < 1e-6);
    assert!(!e.sparse_layers[0]);
    assert!(e.sparse_layers[1..].iter().all(|&s| s));
    assert_eq!(c.ffn, 10240);
}

/// KV memory per token per layer for GLM-4.7-Flash is kv_lora_rank + rope dims = 576 values.
#[test]
fn glm47_flash_kv_is_the_latent_only() {
    let c = config_from_hf(&glm47_flash()).unwrap();
    assert_eq!(c.mla.as_ref().unwrap().latent_width(), 576);
    assert_eq!(KvCache::bytes_per_token(&c), 47 * 576 * 2);
    let mut kv = KvCache::new(&c, 2);
    let layer = kv.latent_mut(46).unwrap();
    assert_eq!(layer.layout().width, 576);
    assert_eq!(layer.bytes_per_token(), 576 * 2);
    assert!(kv.latent_mut(47).is_err());
    assert!(kv.layer_mut(0).is_err(), "an MLA cache has no K/V layers");
}

#[test]
fn deepseek_v3_groups_and_dense_prefix() {
    let mut v = glm47_flash();
    v["model_type"] = json!("deepseek_v3");
    v["q_lora_rank"] = Value::Null;
    v["n_routed_experts"] = json!(256);
    v["num_experts_per_tok"] = json!(8);
    v["n_group"] = json!(8);
    v["topk_group"] = json!(4);
    v["first_k_dense_replace"] = json!(3);
    let c = config_from_hf(&v).unwrap();
    assert_eq!(c.mla.as_ref().unwrap().q_lora_rank, None);
    let e = c.moe.as_ref().unwrap();
    assert_eq!((e.n_group, e.topk_group), (8, 4));
    assert_eq!(&e.sparse_layers[..4], &[false, false, false, true]);
    v["n_group"] = json!(7);
    assert!(
        config_from_hf(&v).is_err(),
        "256 experts do not split into 7 groups"
    );
    v["n_group"] = json!(8);
    v["rope_scaling"] = json!({"type": "yarn", "factor": 40.0});
    assert!(config_from_hf(&v).is_err(), "YaRN is not supported yet");
}

#[test]
fn qwen3_moe_dense_layers_and_softmax() {
    let v = json!({
        "model_type": "qwen3_moe",
        "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 320,
        "intermediate_size": 96, "moe_intermediate_size": 16, "num_experts": 8,
        "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [3],
        "rms_norm_eps": 1e-6, "rope_theta": 1e6
    });
    let c = config_from_hf(&v).unwrap();
    assert!(c.qk_norm && c.mla.is_none());
    let e = c.moe.as_ref().unwrap();
    assert_eq!(e.scoring, Scoring::Softmax);
    assert!(!e.norm_topk_prob);
    assert_eq!(e.sparse_layers, vec![false, true, false, false]);
    let mut bad = v.clone();
    bad["num_experts_per_tok"] = json!(9);
    assert!(
        config_from_hf(&bad).is_err(),
        "top_k above the expert count"
    );
    bad = v;
    bad["mlp_only_layers"] = json!("all");
    assert!(config_from_hf(&bad).is_err());
}

/// Copy-on-write of a shared block copies the latent rows of every MLA layer.
#[test]
fn mla_cache_copy_block_copies_the_latent() {
    let c = config_from_hf(&glm47_flash()).unwrap();
    let mut kv = KvCache::new(&c, 3);
    let row: Vec<f32> = (0..576).map(|i| (i % 7) as f32 - 3.0).collect();
    for l in [0, 46] {
        kv.latent_mut(l).unwrap().write(&[1], 5, &row).unwrap();
    }
    kv.copy_block(1, 2).unwrap();
    let mut back = vec![0f32; 576];
    for l in [0, 46] {
        kv.latent_mut(l).unwrap().read(&[2], 5, &mut back).unwrap();
        assert_eq!(back, row, "layer {l}");
    }
    assert!(kv.copy_block(1, 3).is_err());
}
