//! Writing a tiny Hugging Face folder as a GGUF file the way llama.cpp's converter names it
//! (`deepseek2`, `qwen3moe`), optionally with Q8_0 matrices.

use std::path::{Path, PathBuf};

use marlin_core::formats::quantize_tensor;
use marlin_core::{QTensor, QuantFormat};
use marlin_models::gguf::GgufWriter;
use marlin_models::hf::HfModel;
use serde_json::Value;

use super::tiny;

fn f32_of(hf: &HfModel, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = hf.tensor(name).unwrap();
    (t.shape.clone(), t.to_f32().unwrap())
}

/// How the writer stores matrices whose rows are whole Q8_0 blocks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    /// Everything F32.
    F32,
    /// Q8_0 (router, norms and odd widths stay F32).
    Q8_0,
    /// The Q8_0 values dequantized back to F32: the same weights without quantized kernels.
    Q8_0Twin,
}

/// What a GGUF is written with.
#[derive(Clone, Copy)]
pub struct Opts {
    /// attn_k_b / attn_v_b instead of attn_kv_b.
    pub split_kv_b: bool,
    /// One next-token-prediction block counted in block_count (newer converters).
    pub mtp: bool,
    pub quant: Quant,
}

struct Out {
    w: GgufWriter,
    quant: Quant,
}

fn put(o: &mut Out, name: &str, shape: Vec<usize>, v: &[f32]) {
    let quantize = o.quant != Quant::F32
        && shape.len() >= 2
        && shape[shape.len() - 1].is_multiple_of(32)
        && !name.contains("ffn_gate_inp");
    let t = if quantize {
        let q = quantize_tensor(QuantFormat::Q8_0, &shape, v).unwrap();
        match o.quant {
            Quant::Q8_0Twin => QTensor::from_f32(shape, &q.to_f32().unwrap()).unwrap(),
            _ => q,
        }
    } else {
        QTensor::from_f32(shape, v).unwrap()
    };
    o.w.add_tensor(name, t).unwrap();
}

fn copy(w: &mut Out, hf: &HfModel, from: &str, to: &str) {
    let (s, v) = f32_of(hf, from);
    put(w, to, s, &v);
}

/// Tokenizer metadata in `tokenizer.ggml.*` form from the folder's `tokenizer.json`.
fn tokenizer(w: &mut GgufWriter, dir: &Path) {
    let tok: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap())
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
}

/// Experts of layer `l` stacked into `ffn_{gate,up,down}_exps` `[E, ·, ·]`.
fn experts(w: &mut Out, hf: &HfModel, l: usize, n: usize) {
    for (p, g) in [
        ("gate", "ffn_gate_exps"),
        ("up", "ffn_up_exps"),
        ("down", "ffn_down_exps"),
    ] {
        let mut all = Vec::new();
        let mut shape = Vec::new();
        for e in 0..n {
            let (s, v) = f32_of(
                hf,
                &format!("model.layers.{l}.mlp.experts.{e}.{p}_proj.weight"),
            );
            shape = s;
            all.extend(v);
        }
        put(
            w,
            &format!("blk.{l}.{g}.weight"),
            vec![n, shape[0], shape[1]],
            &all,
        );
    }
}

/// Write tiny folder `name` as a GGUF of `arch` into `out`; returns its path.
pub fn write_gguf(name: &str, arch: &str, opts: Opts, out: &Path) -> PathBuf {
    let (split_kv_b, mtp) = (opts.split_kv_b, opts.mtp);
    let dir = tiny(name);
    let hf = HfModel::open(&dir).unwrap();
    let c: Value = hf.config().raw.clone();
    let n = |k: &str| c[k].as_u64().unwrap() as u32;
    let f = |k: &str| c[k].as_f64().unwrap() as f32;
    let mut w = Out {
        w: GgufWriter::new(),
        quant: opts.quant,
    };
    let key = |k: &str| format!("{arch}.{k}");
    w.w.set("general.architecture", arch).unwrap();
    let heads = n("num_attention_heads");
    for (k, v) in [
        ("context_length", n("max_position_embeddings")),
        ("embedding_length", n("hidden_size")),
        ("block_count", n("num_hidden_layers") + u32::from(mtp)),
        ("feed_forward_length", n("intermediate_size")),
        ("attention.head_count", heads),
        ("expert_feed_forward_length", n("moe_intermediate_size")),
        ("expert_used_count", n("num_experts_per_tok")),
        ("vocab_size", n("vocab_size")),
    ] {
        w.w.set(&key(k), v).unwrap();
    }
    w.w.set(&key("rope.freq_base"), f("rope_theta")).unwrap();
    w.w.set(&key("attention.layer_norm_rms_epsilon"), f("rms_norm_eps"))
        .unwrap();
    tokenizer(&mut w.w, &dir);
    for (h, g) in [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ] {
        copy(&mut w, &hf, h, g);
    }
    let mla = arch == "deepseek2";
    let n_experts = if mla {
        n("n_routed_experts")
    } else {
        n("num_experts")
    } as usize;
    if mla {
        let (r, nope, rope, v) = (
            n("kv_lora_rank"),
            n("qk_nope_head_dim"),
            n("qk_rope_head_dim"),
            n("v_head_dim"),
        );
        let kv_heads = if split_kv_b { 1 } else { heads };
        let (kl, vl) = if split_kv_b {
            (r + rope, r)
        } else {
            (nope + rope, v)
        };
        for (k, x) in [
            ("attention.head_count_kv", kv_heads),
            ("attention.kv_lora_rank", r),
            ("attention.key_length", kl),
            ("attention.value_length", vl),
            ("rope.dimension_count", rope),
            ("leading_dense_block_count", n("first_k_dense_replace")),
            ("expert_count", n_experts as u32),
            ("expert_shared_count", n("n_shared_experts")),
            ("expert_group_count", n("n_group")),
            ("expert_group_used_count", n("topk_group")),
            ("expert_gating_func", 2),
        ] {
            w.w.set(&key(k), x).unwrap();
        }
        if split_kv_b {
            w.w.set(&key("attention.key_length_mla"), nope + rope)
                .unwrap();
            w.w.set(&key("attention.value_length_mla"), v).unwrap();
        }
        if let Some(q) = c["q_lora_rank"].as_u64() {
            w.w.set(&key("attention.q_lora_rank"), q as u32).unwrap();
        }
        w.w.set(&key("expert_weights_scale"), f("routed_scaling_factor"))
            .unwrap();
        w.w.set(
            &key("expert_weights_norm"),
            c["norm_topk_prob"].as_bool().unwrap(),
        )
        .unwrap();
    } else {
        w.w.set(&key("attention.head_count_kv"), n("num_key_value_heads"))
            .unwrap();
        w.w.set(&key("attention.key_length"), n("head_dim"))
            .unwrap();
        w.w.set(&key("expert_count"), n_experts as u32).unwrap();
    }
    let names = [
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"),
        ("self_attn.o_proj", "attn_output"),
        ("self_attn.q_a_proj", "attn_q_a"),
        ("self_attn.q_a_layernorm", "attn_q_a_norm"),
        ("self_attn.q_b_proj", "attn_q_b"),
        ("self_attn.kv_a_proj_with_mqa", "attn_kv_a_mqa"),
        ("self_attn.kv_a_layernorm", "attn_kv_a_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("mlp.gate", "ffn_gate_inp"),
        ("mlp.shared_experts.gate_proj", "ffn_gate_shexp"),
        ("mlp.shared_experts.up_proj", "ffn_up_shexp"),
        ("mlp.shared_experts.down_proj", "ffn_down_shexp"),
    ];
    for l in 0..n("num_hidden_layers") as usize {
        for (h, g) in names {
            let hname = format!("model.layers.{l}.{h}.weight");
            if hf.contains(&hname) {
                copy(&mut w, &hf, &hname, &format!("blk.{l}.{g}.weight"));
            }
        }
        let bias = format!("model.layers.{l}.mlp.gate.e_score_correction_bias");
        if hf.contains(&bias) {
            copy(&mut w, &hf, &bias, &format!("blk.{l}.exp_probs_b.bias"));
        }
        if hf.contains(&format!("model.layers.{l}.mlp.experts.0.gate_proj.weight")) {
            experts(&mut w, &hf, l, n_experts);
        }
        let kvb = format!("model.layers.{l}.self_attn.kv_b_proj.weight");
        if !hf.contains(&kvb) {
            continue;
        }
        if !split_kv_b {
            copy(&mut w, &hf, &kvb, &format!("blk.{l}.attn_kv_b.weight"));
            continue;
        }
        let (shape, v) = f32_of(&hf, &kvb);
        let (r, nope, vd) = (
            shape[1],
            n("qk_nope_head_dim") as usize,
            n("v_head_dim") as usize,
        );
        let h_n = heads as usize;
        let (mut kb, mut vb) = (Vec::new(), Vec::new());
        for h in 0..h_n {
            let base = h * (nope + vd);
            // attn_k_b[h] = W_UK_hᵀ: [kv_lora, nope].
            for j in 0..r {
                for i in 0..nope {
                    kb.push(v[(base + i) * r + j]);
                }
            }
            vb.extend_from_slice(&v[(base + nope) * r..(base + nope + vd) * r]);
        }
        put(
            &mut w,
            &format!("blk.{l}.attn_k_b.weight"),
            vec![h_n, r, nope],
            &kb,
        );
        put(
            &mut w,
            &format!("blk.{l}.attn_v_b.weight"),
            vec![h_n, vd, r],
            &vb,
        );
    }
    if mtp {
        let layers = n("num_hidden_layers");
        w.w.set(&key("nextn_predict_layers"), 1u32).unwrap();
        let d = n("hidden_size") as usize;
        put(
            &mut w,
            &format!("blk.{layers}.nextn.eh_proj.weight"),
            vec![d, 2 * d],
            &vec![0.5; 2 * d * d],
        );
    }
    let path = out.join(format!("{name}.gguf"));
    w.w.write_file(&path).unwrap();
    path
}
