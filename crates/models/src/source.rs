//! Resolving a `--model` argument: a GGUF file, a Hugging Face folder, or a named test model
//! from the model cache (`default` = SmolLM2-135M-Instruct Q4_1).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Named models that `scripts/fetch-models.sh` puts in the cache: (names, file).
pub const KNOWN_MODELS: &[(&[&str], &str)] = &[
    (
        &["default", "smollm2", "smollm2-135m"],
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (&["gemma3", "gemma3-270m"], "gemma-3-270m-Q4_K_M.gguf"),
];

/// The model cache: `$MARLIN_MODEL_DIR`, else `~/.cache/metal-marlin/models`.
pub fn model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MARLIN_MODEL_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/metal-marlin/models")
}

/// The cached file of a named model, if the name is known.
pub fn known_model_path(name: &str) -> Option<PathBuf> {
    KNOWN_MODELS
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, file)| model_dir().join(file))
}

/// Resolve `--model`: an existing path is used as is; a known name maps into the cache.
pub fn resolve_model(arg: &str) -> Result<PathBuf> {
    let p = Path::new(arg);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    if let Some(path) = known_model_path(arg) {
        if path.exists() {
            return Ok(path);
        }
        return Err(Error::Config(format!(
            "model `{arg}` is not in the cache ({}); fetch it with scripts/fetch-models.sh",
            path.display()
        )));
    }
    Err(Error::Config(format!(
        "model `{arg}` is neither an existing file or folder nor a known name ({}) \
         nor synthetic:PRESET:FORMAT",
        KNOWN_MODELS
            .iter()
            .flat_map(|(n, _)| n.iter())
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
