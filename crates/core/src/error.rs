//! The one error type of the core crate.

/// Errors raised by core types: bad shapes, bad block data, unsupported formats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A buffer or shape did not match what the operation needs.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A tensor's row length is not a multiple of its format's block size.
    #[error("{format}: row length {len} is not a multiple of the block size {block}")]
    BlockAlign {
        format: &'static str,
        len: usize,
        block: usize,
    },
    /// The format is known but this operation does not handle it.
    #[error("format {0} is not supported by {1}")]
    Unsupported(&'static str, &'static str),
    /// A size computation overflowed.
    #[error("size overflow: {0}")]
    Overflow(String),
}

/// Result alias for the core crate.
pub type Result<T> = std::result::Result<T, Error>;
