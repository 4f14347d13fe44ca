//! metal-marlin models: file loaders (GGUF, Hugging Face folders), tokenizer and chat
//! templates, shared transformer blocks and one module per architecture.

pub mod chat;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod tokenizer;

pub use error::{Error, Result};
