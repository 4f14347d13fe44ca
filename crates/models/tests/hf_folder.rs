//! Hugging Face folders built in a temp dir: config parsing, single and sharded
//! safetensors, zero-copy float tensors, and inconsistent folders rejected.

#[path = "gguf_common/tempdir.rs"]
mod tempdir;

use std::collections::HashMap;
use std::path::Path;

use marlin_core::{QuantFormat, TensorData};
use marlin_models::hf::{Dtype, HfConfig, HfModel};
use marlin_models::Error;
use safetensors::tensor::TensorView;
use tempdir::TempDir;

const CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
  "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 32,
  "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": null,
  "tie_word_embeddings": true, "eos_token_id": [2, 7], "bos_token_id": 1,
  "n_routed_experts": 4, "torch_dtype": "bfloat16"
}"#;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Write a safetensors file of (name, dtype, shape, bytes).
fn write_st(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn folder(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::write(d.path().join("config.json"), CONFIG).unwrap();
    d
}

fn open_err(dir: &Path) -> String {
    match HfModel::open(dir) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn single_file_folder() {
    let d = folder("hf-single");
    let w = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    write_st(
        &d.path().join("model.safetensors"),
        &[
            ("w", Dtype::F32, vec![2, 3], w.clone()),
            ("h", Dtype::F16, vec![4], vec![0x00, 0x3c, 0, 0, 0, 0, 0, 0]),
            (
                "b",
                Dtype::BF16,
                vec![2, 2],
                vec![0x80, 0x3f, 0, 0, 0, 0, 0, 0],
            ),
            ("ids", Dtype::I32, vec![3], vec![1; 12]),
            ("s", Dtype::F32, vec![], f32_bytes(&[9.5])),
        ],
    );
    let m = HfModel::open(d.path()).unwrap();
    let c = m.config();
    assert_eq!(c.architecture(), "LlamaForCausalLM");
    assert_eq!(
        (c.hidden_size, c.num_hidden_layers, c.vocab_size),
        (8, 2, 32)
    );
    assert_eq!((c.kv_heads(), c.head_dim()), (1, 4));
    assert_eq!(c.eos_token_id.as_ref().unwrap().to_vec(), vec![2, 7]);
    assert_eq!(c.bos_token_id.as_ref().unwrap().to_vec(), vec![1]);
    assert_eq!(c.num_experts, Some(4), "n_routed_experts is an alias");
    assert_eq!(c.rms_norm_eps, Some(1e-5));
    assert_eq!(c.tie_word_embeddings, Some(true));
    assert!(c.rope_scaling.is_none());
    assert_eq!(c.raw["torch_dtype"], "bfloat16");

    let t = m.tensor("w").unwrap();
    assert_eq!((t.format, t.shape.clone()), (QuantFormat::F32, vec![2, 3]));
    assert_eq!(t.bytes(), &w[..]);
    assert!(matches!(t.data(), TensorData::Mapped { .. }));
    assert_eq!(t.to_f32().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let h = m.tensor("h").unwrap();
    assert_eq!(
        (h.format, h.to_f32().unwrap()),
        (QuantFormat::F16, vec![1.0, 0.0, 0.0, 0.0])
    );
    let b = m.tensor("b").unwrap();
    assert_eq!((b.format, b.shape.clone()), (QuantFormat::BF16, vec![2, 2]));
    assert_eq!(b.to_f32().unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(m.tensor("s").unwrap().shape, vec![1]);
    let e = m.tensor("ids").unwrap_err().to_string();
    assert!(e.contains("tensor `ids` has dtype I32"), "{e}");
    let raw = m.raw_tensor("ids").unwrap();
    assert_eq!(
        (raw.dtype, raw.shape, raw.data.bytes().len()),
        (Dtype::I32, vec![3], 12)
    );
    assert!(matches!(m.tensor("nope"), Err(Error::MissingTensor(n)) if n == "nope"));
    assert_eq!(m.tensor_names().len(), 5);

    let s = m.summary();
    assert_eq!(s.container, "safetensors");
    assert_eq!(s.architecture.as_deref(), Some("LlamaForCausalLM"));
    let w_line = s.tensors.iter().find(|t| t.name == "w").unwrap();
    assert_eq!(
        (w_line.format.as_str(), w_line.shape.clone(), w_line.nbytes),
        ("F32", vec![2, 3], 24)
    );
    assert!(s
        .metadata
        .iter()
        .any(|e| e.key == "hidden_size" && e.value == "8"));
}

fn write_index(dir: &Path, map: &[(&str, &str)]) {
    let wm: HashMap<&str, &str> = map.iter().copied().collect();
    let json = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": wm});
    std::fs::write(dir.join("model.safetensors.index.json"), json.to_string()).unwrap();
}

fn two_shards(d: &Path) {
    write_st(
        &d.join("model-00001-of-00002.safetensors"),
        &[("a", Dtype::F32, vec![2], f32_bytes(&[1.0, 2.0]))],
    );
    write_st(
        &d.join("model-00002-of-00002.safetensors"),
        &[("b", Dtype::BF16, vec![1], vec![0x80, 0x3f])],
    );
}

#[test]
fn sharded_folder() {
    let d = folder("hf-shards");
    two_shards(d.path());
    write_index(
        d.path(),
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("b", "model-00002-of-00002.safetensors"),
        ],
    );
    let m = HfModel::open(d.path()).unwrap();
    assert_eq!(m.shards().len(), 2);
    assert_eq!(m.tensor("a").unwrap().bytes(), &f32_bytes(&[1.0, 2.0])[..]);
    assert_eq!(m.tensor("b").unwrap().format, QuantFormat::BF16);
    assert_eq!(m.summary().container, "safetensors (2 shards)");
}

#[test]
fn inconsistent_folders_are_rejected() {
    let d = folder("hf-bad-index");
    two_shards(d.path());
    write_index(
        d.path(),
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("c", "model-00003-of-00003.safetensors"),
        ],
    );
    let e = open_err(d.path());
    assert!(
        e.contains(
            "names shard `model-00003-of-00003.safetensors` (for tensor `c`), which does not exist"
        ),
        "{e}"
    );

    write_index(
        d.path(),
        &[
            ("a", "model-00002-of-00002.safetensors"),
            ("b", "model-00002-of-00002.safetensors"),
        ],
    );
    let e = open_err(d.path());
    assert!(
        e.contains(
            "maps tensor `a` to `model-00002-of-00002.safetensors`, which does not contain it"
        ),
        "{e}"
    );

    write_index(d.path(), &[("a", "../model-00001-of-00002.safetensors")]);
    assert!(open_err(d.path()).contains("not a plain .safetensors file name"));

    let dup = r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "a": "model-00002-of-00002.safetensors"}}"#;
    std::fs::write(d.path().join("model.safetensors.index.json"), dup).unwrap();
    assert!(open_err(d.path()).contains("duplicate key `a`"));

    write_st(
        &d.path().join("model-00002-of-00002.safetensors"),
        &[("a", Dtype::F32, vec![1], f32_bytes(&[3.0]))],
    );
    write_index(
        d.path(),
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("b", "model-00002-of-00002.safetensors"),
        ],
    );
    assert!(open_err(d.path()).contains("tensor `a` appears in both"));

    let empty = folder("hf-empty");
    assert!(open_err(empty.path()).contains("no model.safetensors or model.safetensors.index.json"));

    // A shard whose data was cut short.
    let cut = folder("hf-cut");
    let p = cut.path().join("model.safetensors");
    write_st(&p, &[("w", Dtype::F32, vec![4], f32_bytes(&[1.0; 4]))]);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    let e = open_err(cut.path());
    assert!(
        e.contains("model.safetensors") && e.contains("does not cover the file exactly"),
        "{e}"
    );
}

#[test]
fn config_errors() {
    let e =
        HfConfig::parse(r#"{"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2}"#)
            .unwrap_err();
    assert!(e.to_string().contains("missing `vocab_size`"), "{e}");
    let e = HfConfig::parse(r#"{"hidden_size": 8, "hidden_size": 9}"#).unwrap_err();
    assert!(e.to_string().contains("duplicate key `hidden_size`"), "{e}");
    let e = HfConfig::parse("[1, 2]").unwrap_err();
    assert!(e.to_string().contains("not an object"), "{e}");
    let e = HfConfig::parse(
        r#"{"hidden_size": 0, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 3}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("`hidden_size` must be a positive integer"),
        "{e}"
    );
    let bad_type = CONFIG.replace("\"rms_norm_eps\": 1e-5", "\"rms_norm_eps\": \"small\"");
    let e = HfConfig::parse(&bad_type).unwrap_err();
    assert!(
        e.to_string().contains("config.json") && e.to_string().contains("invalid type"),
        "{e}"
    );
    // Multimodal: the text model's sizes live in text_config.
    let mm = r#"{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18,
        "num_attention_heads": 4, "vocab_size": 262144, "head_dim": 256}}"#;
    let c = HfConfig::parse(mm).unwrap();
    assert_eq!(
        (c.hidden_size, c.head_dim(), c.model_type.as_str()),
        (640, 256, "gemma3_text")
    );
    assert_eq!(c.architecture(), "Gemma3ForConditionalGeneration");
}
