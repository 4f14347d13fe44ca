//! The one error type of the GPU backend.

/// Errors raised by the wgpu backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] marlin_core::Error),
    /// A device selector string that does not parse.
    #[error("bad device selector {0:?}: expected auto, cpu, gpu or gpu:N")]
    BadSelector(String),
    /// No adapter matched the request.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("request_device failed: {0}")]
    RequestDevice(String),
    /// A validation or out-of-memory error reported by wgpu.
    #[error("wgpu error in {context}: {msg}")]
    Wgpu { context: String, msg: String },
    /// Waiting on the device or mapping a buffer failed.
    #[error("device poll/map failed: {0}")]
    Poll(String),
    /// Buffers or shapes that do not fit the op.
    #[error("shape mismatch in {op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// No kernel for this op and format (reported, never emulated).
    #[error("no GPU kernel for {op} on {format}")]
    Unsupported {
        op: &'static str,
        format: &'static str,
    },
    /// A kernel spec names a shader file that is not in the embedded table.
    #[error("shader file {0} is not embedded")]
    MissingShader(String),
    /// A buffer or binding larger than the device allows.
    #[error("{what}: {bytes} bytes exceed the device limit of {limit}")]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
}

/// Result alias for the GPU backend.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A shape error for `op`.
    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }
}
