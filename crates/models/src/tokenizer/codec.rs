//! `Tokenizer`: text ↔ token ids over a Hugging Face `tokenizers` pipeline built from a
//! [`TokenizerSpec`] or loaded from `tokenizer.json`.

use std::collections::HashSet;
use std::sync::OnceLock;

use tokenizers::Tokenizer as HfTokenizer;

use super::spec::{token_type, TokenizerModel, TokenizerSpec};
use super::{byte_level, special, spm};
use crate::{Error, Result};

/// How a single token maps back to bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spelling {
    /// GPT-2 byte alphabet.
    ByteLevel,
    /// `▁` for space, `<0xNN>` for raw bytes.
    SentencePiece,
    /// Whatever the decoder of a `tokenizer.json` makes of it.
    Decoder,
}

/// A tokenizer: encode, decode, special-token facts.
pub struct Tokenizer {
    pub(crate) inner: HfTokenizer,
    /// A copy that treats special tokens in text as plain text (built on first use).
    literal: OnceLock<HfTokenizer>,
    pub(crate) spelling: Spelling,
    pub(crate) bos_id: Option<u32>,
    pub(crate) eos_ids: Vec<u32>,
    pub(crate) add_bos: bool,
    pub(crate) add_eos: bool,
    /// Special tokens come from the `tokenizer.json` post-processor, not from `add_bos`.
    pub(crate) post_processed: bool,
    pub(crate) special: HashSet<u32>,
    pub(crate) vocab_size: usize,
    pub(crate) chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("bos_id", &self.bos_id)
            .field("eos_ids", &self.eos_ids)
            .field("add_bos", &self.add_bos)
            .finish_non_exhaustive()
    }
}

pub(crate) fn hf_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{what}: {e}"))
}

impl Tokenizer {
    /// Build the tokenizer a GGUF file describes.
    pub fn from_spec(spec: &TokenizerSpec) -> Result<Self> {
        spec.validate()?;
        let (mut inner, spelled, spelling) = match spec.model {
            TokenizerModel::Gpt2 => {
                let (bpe, pre) = byte_level::build(spec)?;
                let table = byte_level::byte_to_char();
                let spelled: Vec<String> = spec
                    .tokens
                    .iter()
                    .map(|t| {
                        if t.chars().all(|c| table.contains(&c)) {
                            t.clone()
                        } else {
                            String::new()
                        }
                    })
                    .collect();
                let mut t = HfTokenizer::new(bpe);
                t.with_pre_tokenizer(Some(pre));
                t.with_decoder(Some(byte_level::decoder()));
                (t, spelled, Spelling::ByteLevel)
            }
            TokenizerModel::Llama => {
                let (bpe, pre, dec) = spm::build(spec)?;
                let spelled = spm::vocab_tokens(spec);
                let mut t = HfTokenizer::new(bpe);
                t.with_pre_tokenizer(Some(pre));
                t.with_decoder(Some(dec));
                (t, spelled, Spelling::SentencePiece)
            }
        };
        let (control, user) = special::added_tokens(spec, &spelled);
        inner.add_special_tokens(&control);
        inner.add_tokens(&user);
        let special = (0..spec.tokens.len())
            .filter(|&i| spec.token_type(i) == token_type::CONTROL)
            .map(|i| i as u32)
            .collect();
        Ok(Self {
            vocab_size: inner.get_vocab_size(true),
            inner,
            literal: OnceLock::new(),
            spelling,
            bos_id: spec.bos_id,
            eos_ids: special::eos_ids(spec),
            add_bos: spec.add_bos,
            add_eos: spec.add_eos,
            post_processed: false,
            special,
            chat_template: spec.chat_template.clone(),
        })
    }

    pub(crate) fn from_parts(inner: HfTokenizer, spelling: Spelling) -> Self {
        let special = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        Self {
            vocab_size: inner.get_vocab_size(true),
            inner,
            literal: OnceLock::new(),
            spelling,
            bos_id: None,
            eos_ids: Vec::new(),
            add_bos: false,
            add_eos: false,
            post_processed: true,
            special,
            chat_template: None,
        }
    }

    /// Encode `text`, adding BOS/EOS as the model asks. With `parse_special`, control tokens
    /// written in the text (`<|im_start|>`) become their ids; otherwise they are plain text.
    /// BOS is not added a second time when the text already starts with it.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        self.encode_with(text, true, parse_special)
    }

    /// Encode `text`; `add_special` adds BOS/EOS per the model, `parse_special` as in
    /// [`Tokenizer::encode`].
    pub fn encode_with(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>> {
        let tk = if parse_special {
            &self.inner
        } else {
            self.literal()
        };
        let enc = tk
            .encode_fast(text, add_special && self.post_processed)
            .map_err(|e| hf_err("encode", e))?;
        let mut ids = enc.get_ids().to_vec();
        if add_special && !self.post_processed {
            if let Some(bos) = self.bos_id.filter(|_| self.add_bos) {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
            if let Some(&eos) = self.eos_ids.first().filter(|_| self.add_eos) {
                ids.push(eos);
            }
        }
        Ok(ids)
    }

    fn literal(&self) -> &HfTokenizer {
        self.literal.get_or_init(|| {
            let mut t = self.inner.clone();
            t.set_encode_special_tokens(true);
            t
        })
    }

    /// Decode ids to text; `skip_special` drops control tokens. Fails on an id outside the
    /// vocabulary.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(Error::Tokenizer(format!(
                "token id {bad} outside vocabulary of {}",
                self.vocab_size
            )));
        }
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| hf_err("decode", e))
    }

    /// The vocabulary string of token `id` (e.g. `Ġthe`, `▁the`, `<0x0A>`).
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of vocabulary string `token`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The bytes token `id` stands for in decoded text (a special token: its name).
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let s = self.token_str(id)?;
        if self.special.contains(&id) {
            return Some(s.into_bytes());
        }
        Some(match self.spelling {
            Spelling::ByteLevel => {
                let table = byte_level::byte_to_char();
                let mut out = Vec::with_capacity(s.len());
                for c in s.chars() {
                    match table.iter().position(|&t| t == c) {
                        Some(b) => out.push(b as u8),
                        None => out.extend_from_slice(c.to_string().as_bytes()),
                    }
                }
                out
            }
            Spelling::SentencePiece => match byte_token(&s) {
                Some(b) => vec![b],
                None => s.replace(spm::SPACE, " ").into_bytes(),
            },
            Spelling::Decoder => self.inner.decode(&[id], false).ok()?.into_bytes(),
        })
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Tokens that end generation: EOS first, then end-of-turn tokens (`<|im_end|>`,
    /// `<end_of_turn>`, ...).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// True when `id` ends generation.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.contains(&id)
    }

    /// Whether [`Tokenizer::encode`] prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// True for control tokens (skipped by `decode(.., true)`).
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }

    /// The chat template shipped with the tokenizer, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The underlying `tokenizers` pipeline.
    pub fn inner(&self) -> &HfTokenizer {
        &self.inner
    }
}

/// `<0xNN>` → NN.
fn byte_token(s: &str) -> Option<u8> {
    let hex = s.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}
