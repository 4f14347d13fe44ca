//! The one error type of the engine crate.

use crate::blocks::OutOfBlocks;

/// Errors raised while scheduling or running sequences.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The KV cache has too few free blocks for a request.
    #[error(transparent)]
    OutOfBlocks(#[from] OutOfBlocks),
    #[error(transparent)]
    Models(#[from] marlin_models::Error),
    /// A request the engine cannot run (empty prompt, too long, bad parameters).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A block id that is out of range or not in the state the operation needs.
    #[error("KV block {id}: {reason}")]
    InvalidBlock { id: u32, reason: &'static str },
    /// Too many requests in flight; try again later.
    #[error("the server is overloaded; try again later")]
    Overloaded,
    /// The engine is shutting down and takes no new requests.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Result alias for the engine crate.
pub type Result<T> = std::result::Result<T, Error>;
