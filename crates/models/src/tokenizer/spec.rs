//! `TokenizerSpec`: the tokenizer description a GGUF file carries in its metadata.

use crate::gguf::{GgufFile, Metadata};
use crate::{Error, Result};

/// Which tokenizer family `tokenizer.ggml.model` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerModel {
    /// `gpt2`: byte-level BPE with an explicit merge list.
    Gpt2,
    /// `llama`: SentencePiece-style BPE with scores and `<0xNN>` byte-fallback tokens.
    Llama,
}

/// Token types as llama.cpp writes them in `tokenizer.ggml.token_type`.
pub mod token_type {
    /// An ordinary vocabulary piece.
    pub const NORMAL: i32 = 1;
    /// The unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A control token such as `<|im_start|>` (special; parsed only on request).
    pub const CONTROL: i32 = 3;
    /// A user-defined token, always matched whole in text.
    pub const USER_DEFINED: i32 = 4;
    /// An unused slot.
    pub const UNUSED: i32 = 5;
    /// A byte token `<0xNN>`.
    pub const BYTE: i32 = 6;
}

/// Everything needed to build a [`super::Tokenizer`], as GGUF metadata states it.
#[derive(Debug, Clone)]
pub struct TokenizerSpec {
    /// Tokenizer family.
    pub model: TokenizerModel,
    /// Pre-tokenizer id (`tokenizer.ggml.pre`), e.g. `smollm`, `llama-bpe`, `qwen2`.
    pub pre: Option<String>,
    /// `general.architecture`; decides the merge order of SentencePiece vocabularies.
    pub arch: Option<String>,
    /// Token strings; the index is the id.
    pub tokens: Vec<String>,
    /// One [`token_type`] per token (empty: all normal).
    pub token_types: Vec<i32>,
    /// BPE merges `"A B"`, best first (byte-level vocabularies).
    pub merges: Vec<String>,
    /// Token scores (SentencePiece vocabularies).
    pub scores: Vec<f32>,
    /// Beginning-of-sequence token.
    pub bos_id: Option<u32>,
    /// End-of-sequence token.
    pub eos_id: Option<u32>,
    /// Unknown token.
    pub unk_id: Option<u32>,
    /// Padding token.
    pub pad_id: Option<u32>,
    /// Prepend BOS when encoding.
    pub add_bos: bool,
    /// Append EOS when encoding.
    pub add_eos: bool,
    /// Prepend a space (`▁`) to the text (SentencePiece vocabularies).
    pub add_space_prefix: bool,
    /// The Jinja chat template, if the file has one.
    pub chat_template: Option<String>,
}

impl TokenizerSpec {
    /// Read the `tokenizer.*` keys of a GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        Self::from_metadata(file.metadata())
    }

    /// Read the `tokenizer.*` keys of GGUF metadata.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let model = match md.get_str("tokenizer.ggml.model")? {
            "gpt2" => TokenizerModel::Gpt2,
            "llama" => TokenizerModel::Llama,
            other => {
                return Err(Error::Unsupported(format!(
                    "tokenizer model `{other}` (supported: gpt2, llama)"
                )))
            }
        };
        let tokens = md.get_str_array("tokenizer.ggml.tokens")?.to_vec();
        let token_types = match md.get("tokenizer.ggml.token_type") {
            None => Vec::new(),
            Some(_) => match md.get_i32_array("tokenizer.ggml.token_type") {
                Ok(v) => v.to_vec(),
                Err(_) => md
                    .get_u64_array("tokenizer.ggml.token_type")?
                    .into_iter()
                    .map(|t| i32::try_from(t).unwrap_or(0))
                    .collect(),
            },
        };
        let merges = md
            .opt_str_array("tokenizer.ggml.merges")?
            .map(<[String]>::to_vec)
            .unwrap_or_default();
        let scores = md
            .opt_f32_array("tokenizer.ggml.scores")?
            .map(<[f32]>::to_vec)
            .unwrap_or_default();
        let pre = md.opt_str("tokenizer.ggml.pre")?.map(str::to_string);
        // llama.cpp's defaults when a key is absent.
        let default_bos = model == TokenizerModel::Llama || pre.as_deref() == Some("llama-bpe");
        let spec = Self {
            model,
            pre,
            arch: md.opt_str("general.architecture")?.map(str::to_string),
            tokens,
            token_types,
            merges,
            scores,
            bos_id: md.opt_u32("tokenizer.ggml.bos_token_id")?,
            eos_id: md.opt_u32("tokenizer.ggml.eos_token_id")?,
            unk_id: md.opt_u32("tokenizer.ggml.unknown_token_id")?,
            pad_id: md.opt_u32("tokenizer.ggml.padding_token_id")?,
            add_bos: md
                .opt_bool("tokenizer.ggml.add_bos_token")?
                .unwrap_or(default_bos),
            add_eos: md
                .opt_bool("tokenizer.ggml.add_eos_token")?
                .unwrap_or(false),
            add_space_prefix: md
                .opt_bool("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(model == TokenizerModel::Llama),
            chat_template: md.opt_str("tokenizer.chat_template")?.map(str::to_string),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Check the arrays agree and every named id is in range.
    pub fn validate(&self) -> Result<()> {
        let n = self.tokens.len();
        if n == 0 {
            return Err(Error::Tokenizer("empty vocabulary".into()));
        }
        if u32::try_from(n).is_err() {
            return Err(Error::Tokenizer(format!(
                "vocabulary of {n} tokens is too large"
            )));
        }
        if !self.token_types.is_empty() && self.token_types.len() != n {
            return Err(Error::Tokenizer(format!(
                "{} token types for {n} tokens",
                self.token_types.len()
            )));
        }
        if !self.scores.is_empty() && self.scores.len() != n {
            return Err(Error::Tokenizer(format!(
                "{} scores for {n} tokens",
                self.scores.len()
            )));
        }
        for (name, id) in [
            ("bos", self.bos_id),
            ("eos", self.eos_id),
            ("unk", self.unk_id),
            ("pad", self.pad_id),
        ] {
            if let Some(id) = id {
                if id as usize >= n {
                    return Err(Error::Tokenizer(format!(
                        "{name} token id {id} outside vocabulary of {n}"
                    )));
                }
            }
        }
        if self.model == TokenizerModel::Gpt2 && self.merges.is_empty() {
            return Err(Error::Tokenizer("gpt2 tokenizer without merges".into()));
        }
        Ok(())
    }

    /// The type of token `id` ([`token_type::NORMAL`] when the file gives none).
    pub fn token_type(&self, id: usize) -> i32 {
        self.token_types
            .get(id)
            .copied()
            .unwrap_or(token_type::NORMAL)
    }
}
