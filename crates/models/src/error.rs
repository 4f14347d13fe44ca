//! The one error type of the models crate.

use std::path::PathBuf;

/// Errors raised while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] marlin_core::Error),
    #[error(transparent)]
    Cpu(#[from] marlin_cpu::Error),
    #[error(transparent)]
    Gpu(#[from] marlin_gpu::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A malformed or hostile GGUF file.
    #[error("invalid GGUF file: {0}")]
    Gguf(String),
    /// A malformed safetensors file.
    #[error("invalid safetensors file: {0}")]
    Safetensors(String),
    /// A missing or inconsistent config value.
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("missing metadata key `{0}`")]
    MissingKey(String),
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    /// A model or feature this build does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Result alias for the models crate.
pub type Result<T> = std::result::Result<T, Error>;
