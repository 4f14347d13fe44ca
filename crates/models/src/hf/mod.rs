//! Hugging Face model folders: `config.json` plus `model.safetensors` or its shards,
//! memory-mapped and validated; float tensors come out as zero-copy `QTensor`s.

mod config;
mod folder;
mod json;
mod safetensors;
mod summary;

pub use self::safetensors::{format_of, RawTensor, SafetensorsFile};
pub use ::safetensors::Dtype;
pub use config::{HfConfig, TokenIds};
pub use folder::HfModel;
