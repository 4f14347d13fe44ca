//! The tokenizer of synthetic models: SentencePiece-style with byte fallback, ChatML control
//! tokens, the 256 byte tokens, `▁`, and unused filler tokens up to the vocabulary size.

use crate::tokenizer::{token_type, Tokenizer, TokenizerModel, TokenizerSpec};
use crate::{Error, Result};

/// Control tokens first: `<unk>`, `<s>` (BOS), `</s>` (EOS) and ChatML's turn markers.
const CONTROL: [&str; 5] = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"];

/// Tokens before the fillers.
const FIXED: usize = CONTROL.len() + 256 + 1;

/// The spec of a `vocab`-token synthetic vocabulary.
pub fn spec(vocab: usize) -> Result<TokenizerSpec> {
    if vocab < FIXED {
        return Err(Error::Tokenizer(format!(
            "a synthetic vocabulary needs at least {FIXED} tokens, got {vocab}"
        )));
    }
    let mut tokens: Vec<String> = CONTROL.iter().map(|s| s.to_string()).collect();
    let mut types = vec![token_type::CONTROL; CONTROL.len()];
    types[0] = token_type::UNKNOWN;
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    types.extend([token_type::BYTE; 256]);
    tokens.push("\u{2581}".to_string());
    types.push(token_type::NORMAL);
    tokens.extend((FIXED..vocab).map(|i| format!("<unused_{i}>")));
    types.resize(vocab, token_type::UNUSED);
    Ok(TokenizerSpec {
        model: TokenizerModel::Llama,
        pre: None,
        arch: Some("llama".into()),
        scores: vec![0.0; tokens.len()],
        tokens,
        token_types: types,
        merges: Vec::new(),
        bos_id: Some(1),
        eos_id: Some(2),
        unk_id: Some(0),
        pad_id: None,
        add_bos: true,
        add_eos: false,
        add_space_prefix: false,
        chat_template: None,
    })
}

/// The synthetic tokenizer of `vocab` tokens.
pub fn tokenizer(vocab: usize) -> Result<Tokenizer> {
    Tokenizer::from_spec(&spec(vocab)?)
}
