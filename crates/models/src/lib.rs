//! metal-marlin models: file loaders (GGUF, Hugging Face folders), tokenizer and chat
//! templates, the transformer forward pass and model resolution.

pub mod blocks;
pub mod chat;
pub mod config;
pub mod error;
pub mod forward;
pub mod gguf;
pub mod gpu_forward;
pub mod hf;
pub mod inspect;
pub mod kv_cache;
pub mod load;
pub mod model;
mod prompt;
pub mod source;
pub mod synthetic;
pub mod tokenizer;
pub mod weights;

pub use error::{Error, Result};
pub use forward::{Logits, LogitsRequest, SeqInput};
pub use gpu_forward::{Device, GpuKvCache, GpuModel};
pub use model::Model;
