//! The GGUF path of the llama family, checked against the same transformers goldens as the
//! Hugging Face path: each tiny HF folder is written out as a GGUF file the way llama.cpp's
//! converter does (Q/K rows permuted for adjacent-pair RoPE under arch `llama`, Llama-3 rope
//! scaling as a `rope_freqs` tensor, tokenizer in `tokenizer.ggml.*` metadata) and must give
//! the same logits.

use std::path::PathBuf;
use std::sync::Arc;

use marlin_core::rope::{RopeConfig, RopeMode, RopeScaling};
use marlin_core::QTensor;
use marlin_engine::Engine;
use marlin_models::gguf::GgufWriter;
use marlin_models::hf::HfModel;
use marlin_models::{LogitsRequest, Model};
use serde_json::Value;

fn tiny(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

/// llama.cpp's permutation: within each head, GGUF row 2i ← HF row i, 2i+1 ← HF row i+hd/2.
fn permute_rows(w: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
    let hd = w.len() / cols / n_heads;
    let mut out = vec![0f32; w.len()];
    for h in 0..n_heads {
        for i in 0..hd / 2 {
            for (dst, src) in [(2 * i, i), (2 * i + 1, i + hd / 2)] {
                let (d, s) = ((h * hd + dst) * cols, (h * hd + src) * cols);
                out[d..d + cols].copy_from_slice(&w[s..s + cols]);
            }
        }
    }
    out
}

fn f32_tensor(hf: &HfModel, name: &str) -> QTensor {
    let t = hf.tensor(name).unwrap();
    QTensor::from_f32(t.shape.clone(), &t.to_f32().unwrap()).unwrap()
}

/// Write the tiny HF folder `name` as a GGUF of architecture `arch`; returns its path.
fn write_gguf(name: &str, arch: &str, dir: &std::path::Path) -> PathBuf {
    let hf = HfModel::open(tiny(name)).unwrap();
    let cfg: Value = hf.config().raw.clone();
    let n = |k: &str| cfg[k].as_u64().unwrap() as u32;
    let (heads, kv_heads, hidden) = (
        n("num_attention_heads"),
        n("num_key_value_heads"),
        n("hidden_size"),
    );
    let mut w = GgufWriter::new();
    let key = |k: &str| format!("{arch}.{k}");
    w.set("general.architecture", arch).unwrap();
    w.set(&key("context_length"), n("max_position_embeddings"))
        .unwrap();
    w.set(&key("embedding_length"), hidden).unwrap();
    w.set(&key("block_count"), n("num_hidden_layers")).unwrap();
    w.set(&key("feed_forward_length"), n("intermediate_size"))
        .unwrap();
    w.set(&key("attention.head_count"), heads).unwrap();
    w.set(&key("attention.head_count_kv"), kv_heads).unwrap();
    w.set(
        &key("rope.freq_base"),
        cfg["rope_theta"].as_f64().unwrap() as f32,
    )
    .unwrap();
    w.set(
        &key("attention.layer_norm_rms_epsilon"),
        cfg["rms_norm_eps"].as_f64().unwrap() as f32,
    )
    .unwrap();

    let tok: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny(name).join("tokenizer.json")).unwrap())
            .unwrap();
    let vocab = tok["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = t.clone();
    }
    let specials: Vec<&str> = tok["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["content"].as_str().unwrap())
        .collect();
    let types: Vec<i32> = tokens
        .iter()
        .map(|t| if specials.contains(&t.as_str()) { 3 } else { 1 })
        .collect();
    let merges: Vec<String> = tok["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{} {}", m[0].as_str().unwrap(), m[1].as_str().unwrap()))
        .collect();
    w.set("tokenizer.ggml.model", "gpt2").unwrap();
    w.set("tokenizer.ggml.pre", "gpt-2").unwrap();
    w.set(
        "tokenizer.ggml.tokens",
        tokens.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .unwrap();
    w.set("tokenizer.ggml.token_type", types).unwrap();
    w.set(
        "tokenizer.ggml.merges",
        merges.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .unwrap();
    w.set("tokenizer.ggml.bos_token_id", 1u32).unwrap();
    w.set("tokenizer.ggml.eos_token_id", 4u32).unwrap();
    w.set("tokenizer.ggml.add_bos_token", false).unwrap();

    if let Some(s) = cfg.get("rope_scaling").filter(|s| s.is_object()) {
        let f = |k: &str| s[k].as_f64().unwrap() as f32;
        let hd = (hidden / heads) as usize;
        let plain = RopeConfig::new(
            hd,
            cfg["rope_theta"].as_f64().unwrap() as f32,
            RopeMode::Normal,
        );
        let mut scaled = plain.clone();
        scaled.scaling = RopeScaling::Llama3 {
            factor: f("factor"),
            low_freq_factor: f("low_freq_factor"),
            high_freq_factor: f("high_freq_factor"),
            original_context: s["original_max_position_embeddings"].as_u64().unwrap() as usize,
        };
        let factors: Vec<f32> = plain
            .inv_freqs()
            .iter()
            .zip(scaled.inv_freqs())
            .map(|(p, s)| p / s)
            .collect();
        w.add_tensor(
            "rope_freqs.weight",
            QTensor::from_f32(vec![factors.len()], &factors).unwrap(),
        )
        .unwrap();
    }
    let names = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    for (h, g) in names {
        if hf.contains(h) {
            w.add_tensor(g, f32_tensor(&hf, h)).unwrap();
        }
    }
    let per_layer = [
        ("input_layernorm", "attn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ];
    for l in 0..n("num_hidden_layers") {
        for (h, g) in per_layer {
            for suffix in ["weight", "bias"] {
                let hname = format!("model.layers.{l}.{h}.{suffix}");
                if !hf.contains(&hname) {
                    continue;
                }
                let mut t = f32_tensor(&hf, &hname);
                let heads_of = match g {
                    "attn_q" => Some(heads),
                    "attn_k" => Some(kv_heads),
                    _ => None,
                };
                if let (Some(nh), "llama") = (heads_of, arch) {
                    let cols = if suffix == "weight" { t.cols() } else { 1 };
                    let v = permute_rows(&t.to_f32().unwrap(), nh as usize, cols);
                    t = QTensor::from_f32(t.shape.clone(), &v).unwrap();
                }
                w.add_tensor(&format!("blk.{l}.{g}.{suffix}"), t).unwrap();
            }
        }
    }
    let path = dir.join(format!("{name}.gguf"));
    w.write_file(&path).unwrap();
    path
}

fn check(name: &str, arch: &str) {
    let dir = std::env::temp_dir().join(format!("marlin-gguf-tiny-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = write_gguf(name, arch, &dir);
    let model = Arc::new(Model::load(&path, &mut |_, _| {}).unwrap());
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny(name).join("golden.json")).unwrap())
            .unwrap();
    let mut engine = Engine::new(model, 64);
    for prompt in golden["prompts"].as_array().unwrap() {
        let ids: Vec<u32> = prompt["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let logits = engine.prompt_logits(&ids, LogitsRequest::All).unwrap();
        let want = prompt["logits"].as_array().unwrap();
        let scale = want
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|x| x.as_f64().unwrap().abs())
            .fold(1.0, f64::max);
        let mut worst = 0f64;
        for (pos, row) in want.iter().enumerate() {
            for (i, x) in row.as_array().unwrap().iter().enumerate() {
                worst = worst.max((logits.row(pos)[i] as f64 - x.as_f64().unwrap()).abs());
            }
        }
        assert!(
            worst <= 1e-3 * scale,
            "{name} as GGUF: max |Δ| {worst} (scale {scale})"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn llama_as_gguf_matches_transformers() {
    check("llama", "llama");
}

#[test]
fn llama3_rope_freqs_as_gguf_matches_transformers() {
    check("llama3", "llama");
}

#[test]
fn qwen2_as_gguf_matches_transformers() {
    check("qwen2", "qwen2");
}
