//! GGUF v2/v3: a hardened memory-mapped reader, typed metadata, and a small writer.
//!
//! Every count, length, dimension, type id, offset and range is validated before use
//! (formats_digest §1.2, reliability F1–F9); a hostile file yields `Error::Gguf`, never a
//! panic or an allocation larger than the file.

mod atomic;
mod display;
mod file;
pub mod limits;
mod metadata;
mod parse;
mod reader;
mod summary;
mod tensor_info;
mod types;
mod value;
mod value_from;
pub mod write;

pub use file::GgufFile;
pub use metadata::Metadata;
pub use summary::{ModelSummary, SummaryEntry, TensorSummary};
pub use tensor_info::TensorInfo;
pub use types::{GgmlType, TypeIdError};
pub use value::{MetaArray, MetaValue, ValueType};
pub use write::GgufWriter;
