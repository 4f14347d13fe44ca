//! Chat templates: Jinja sources rendered with minijinja the way transformers renders them
//! (`trim_blocks`, `lstrip_blocks`, loop controls, Python string/dict methods,
//! `raise_exception`, Python-style `tojson`), plus built-in fallbacks.

mod functions;
mod template;

pub use template::{ChatMessage, ChatTemplate};

/// ChatML, the fallback for models that ship no template.
pub const CHATML_TEMPLATE: &str = include_str!("templates/chatml.jinja");

/// Gemma's turn format (`<start_of_turn>user ... <end_of_turn>`), the fallback for Gemma
/// vocabularies without a template.
pub const GEMMA_TEMPLATE: &str = include_str!("templates/gemma.jinja");
