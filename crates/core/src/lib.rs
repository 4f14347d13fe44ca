//! metal-marlin core: quantized formats, tensors, errors and the f32 reference oracle.
//!
//! Every other crate builds on these types; nothing here knows about threads or GPUs.

pub mod error;
pub mod format;
pub mod formats;
pub mod hadamard;
pub mod marlin_format;
pub mod reference;
pub mod rope;
pub mod tensor;

pub use error::{Error, Result};
pub use format::QuantFormat;
pub use formats::trellis::{Codebook, TrellisFormat};
pub use marlin_format::{Group, IntBits, IntFormat};
pub use tensor::{QTensor, TensorData};
