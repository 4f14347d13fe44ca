//! Tokenizers built from GGUF metadata (byte-level BPE and SentencePiece-style BPE) or from a
//! Hugging Face `tokenizer.json`, plus incremental detokenization.

mod byte_level;
mod codec;
mod hf_file;
mod spec;
mod special;
mod spm;
mod stream;

pub use codec::Tokenizer;
pub use spec::{token_type, TokenizerModel, TokenizerSpec};
pub use stream::{StreamDecoder, StreamState};

impl Tokenizer {
    /// Build the tokenizer of a GGUF file.
    pub fn from_gguf(file: &crate::gguf::GgufFile) -> crate::Result<Self> {
        Self::from_spec(&TokenizerSpec::from_gguf(file)?)
    }
}
