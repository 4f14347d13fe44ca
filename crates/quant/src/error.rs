//! The one error type of the quantizer.

use std::path::PathBuf;

/// Errors raised while quantizing or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] marlin_core::Error),
    #[error(transparent)]
    Cpu(#[from] marlin_cpu::Error),
    #[error(transparent)]
    Models(#[from] marlin_models::Error),
    #[error(transparent)]
    Engine(#[from] marlin_engine::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A bad option or option combination.
    #[error("invalid option: {0}")]
    Invalid(String),
    /// A model or tensor this quantizer cannot handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A numerical failure (e.g. a Hessian that stays singular after damping).
    #[error("numerical failure: {0}")]
    Numeric(String),
    /// The writer was used out of order.
    #[error("checkpoint writer: {0}")]
    Writer(String),
}

/// Result alias for the quantizer.
pub type Result<T> = std::result::Result<T, Error>;

/// An I/O error with its path.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
