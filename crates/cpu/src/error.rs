//! The one error type of the CPU backend.

/// Errors raised by CPU kernels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] marlin_core::Error),
    /// Buffers whose sizes do not match the op.
    #[error("shape mismatch in {op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// A weight format with no CPU kernel.
    #[error("no CPU kernel for {op} on {format}")]
    Unsupported {
        op: &'static str,
        format: &'static str,
    },
    /// A KV position whose block is not in the sequence's block table.
    #[error("KV position {pos} needs block table entry {index}, but the table has {len}")]
    MissingBlock {
        pos: usize,
        index: usize,
        len: usize,
    },
    /// A block id past the end of the KV storage.
    #[error("KV block id {id} is out of range ({num_blocks} blocks)")]
    BlockOutOfRange { id: u32, num_blocks: usize },
    /// A kernel family that this CPU cannot run was requested.
    #[error("instruction set {0} is not available on this CPU")]
    IsaUnavailable(&'static str),
}

/// Result alias for the CPU backend.
pub type Result<T> = std::result::Result<T, Error>;
