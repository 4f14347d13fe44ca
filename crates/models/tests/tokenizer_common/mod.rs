//! Shared helpers of the tokenizer tests: locating the real GGUF models and the fixtures.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use marlin_models::gguf::GgufFile;
use marlin_models::tokenizer::{Tokenizer, TokenizerSpec};
use serde_json::Value;

/// Fixture folder and GGUF file name of each test model.
pub const SMOLLM: (&str, &str) = ("smollm2-135m-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf");
pub const GEMMA: (&str, &str) = ("gemma3-270m-q4_k_m", "gemma-3-270m-Q4_K_M.gguf");

/// The GGUF file `name`: `$MARLIN_MODEL_DIR`, else `~/.cache/metal-marlin/models`, else
/// `/work/models`. Panics (failing the test) when absent.
pub fn model_path(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("MARLIN_MODEL_DIR") {
        dirs.push(d.into());
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/metal-marlin/models"));
    }
    dirs.push("/work/models".into());
    for d in &dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("test model {name} not found in {dirs:?}: run scripts/fetch-models.sh (it fills $MARLIN_MODEL_DIR or ~/.cache/metal-marlin/models)");
}

/// The parsed fixture `fixtures/<model>/<file>`.
pub fn fixture(model: &str, file: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(model)
        .join(file);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The tokenizer spec of a test model.
pub fn spec(model: (&str, &str)) -> TokenizerSpec {
    let file = GgufFile::open(model_path(model.1)).expect("open gguf");
    TokenizerSpec::from_gguf(&file).expect("tokenizer spec")
}

/// The tokenizer of a test model, built once per test binary.
pub fn tokenizer(model: (&str, &str)) -> &'static Tokenizer {
    static SMOL: OnceLock<Tokenizer> = OnceLock::new();
    static GEM: OnceLock<Tokenizer> = OnceLock::new();
    let cell = if model.0 == SMOLLM.0 { &SMOL } else { &GEM };
    cell.get_or_init(|| Tokenizer::from_spec(&spec(model)).expect("build tokenizer"))
}

/// A JSON array of numbers as token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}
