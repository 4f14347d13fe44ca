//! Opens the real test models (skipped with a note when absent).

use std::path::PathBuf;

use marlin_core::{QuantFormat, TensorData};
use marlin_models::gguf::GgufFile;

/// `$MARLIN_MODEL_DIR`, else `~/.cache/metal-marlin/models`, else `/work/models`.
fn find_model(name: &str) -> Option<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("MARLIN_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/metal-marlin/models"));
    }
    dirs.push(PathBuf::from("/work/models"));
    let found = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    if found.is_none() {
        eprintln!("note: {name} not found in {dirs:?}; skipping (run scripts/fetch-models.sh)");
    }
    found
}

fn check_tensor(f: &GgufFile, name: &str, format: QuantFormat, shape: &[usize]) {
    let t = f.tensor(name).unwrap();
    assert_eq!(t.format, format, "{name}");
    assert_eq!(t.shape, shape, "{name}");
    assert!(
        matches!(t.data(), TensorData::Mapped { .. }),
        "{name} is not mapped"
    );
    // Zero-copy: the tensor's bytes are the file's bytes.
    assert_eq!(t.bytes().as_ptr(), f.tensor_bytes(name).unwrap().as_ptr());
}

fn f32_values(f: &GgufFile, name: &str) -> Vec<f32> {
    f.tensor_bytes(name)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn smollm2_q4_1() {
    let Some(path) = find_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.tensors().len(), 272);
    assert_eq!(f.alignment(), 32);
    let md = f.metadata();
    assert_eq!(md.len(), 33);
    assert_eq!(md.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(md.get_u64("llama.embedding_length").unwrap(), 576);
    assert_eq!(md.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(md.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert_eq!(md.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert!(!md.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[2], "<|im_end|>");
    assert_eq!(md.get_str_array("tokenizer.ggml.merges").unwrap()[0], "Ġ t");
    assert_eq!(md.get_i32_array("tokenizer.ggml.token_type").unwrap()[0], 3);
    assert_eq!(md.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert!(md
        .get_str("tokenizer.chat_template")
        .unwrap()
        .contains("im_start"));
    check_tensor(&f, "token_embd.weight", QuantFormat::Q8_0, &[49152, 576]);
    check_tensor(&f, "blk.0.attn_k.weight", QuantFormat::Q4_1, &[192, 576]);
    check_tensor(
        &f,
        "blk.29.ffn_down.weight",
        QuantFormat::Q4_1,
        &[576, 1536],
    );
    check_tensor(&f, "output_norm.weight", QuantFormat::F32, &[576]);
    assert!(
        f.tensor_info("output.weight").is_none(),
        "SmolLM2 ties embeddings"
    );
    let mut row = vec![0f32; 576];
    let embd = f.tensor("token_embd.weight").unwrap();
    embd.dequantize_row(1, &mut row).unwrap();
    assert!(row.iter().all(|x| x.is_finite()) && row.iter().any(|&x| x != 0.0));
    let norm = f32_values(&f, "output_norm.weight");
    assert!(norm.iter().all(|x| x.is_finite()) && norm.iter().any(|&x| x != 0.0));
    let s = f.summary();
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    assert_eq!(s.tensors.len(), 272);
    let tok = s
        .metadata
        .iter()
        .find(|e| e.key == "tokenizer.ggml.tokens")
        .unwrap();
    assert!(
        tok.value.starts_with("49152 × string: [\"<|endoftext|>\""),
        "{}",
        tok.value
    );
    assert!(tok.value.len() < 200);
}

#[test]
fn gemma3_q4_k_m() {
    let Some(path) = find_model("gemma-3-270m-Q4_K_M.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.architecture().unwrap(), "gemma3");
    assert_eq!(f.tensors().len(), 236);
    let md = f.metadata();
    assert_eq!(md.get_u32("gemma3.block_count").unwrap(), 18);
    assert_eq!(md.get_u32("gemma3.attention.key_length").unwrap(), 256);
    assert_eq!(md.get_u32("gemma3.attention.sliding_window").unwrap(), 512);
    assert_eq!(
        md.get_f32_array("tokenizer.ggml.scores").unwrap().len(),
        262144
    );
    assert_eq!(md.opt_u32("gemma3.rope.dimension_count").unwrap(), None);
    check_tensor(&f, "token_embd.weight", QuantFormat::Q8_0, &[262144, 640]);
    check_tensor(&f, "blk.0.attn_q.weight", QuantFormat::Q5_0, &[1024, 640]);
    check_tensor(
        &f,
        "blk.0.attn_output.weight",
        QuantFormat::Q4_K,
        &[640, 1024],
    );
    check_tensor(&f, "blk.0.ffn_down.weight", QuantFormat::Q6_K, &[640, 2048]);
    check_tensor(&f, "blk.17.attn_k_norm.weight", QuantFormat::F32, &[256]);
    let total: u64 = f.tensors().iter().map(|t| t.nbytes).sum();
    assert_eq!(total, 246_587_904);
    assert!(f.data_offset() + total <= f.file_size());
}
