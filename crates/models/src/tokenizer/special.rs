//! Which tokens are special: control and user-defined tokens to match whole in text, and the
//! end-of-generation set.

use tokenizers::AddedToken;

use super::spec::{token_type, TokenizerSpec};

/// Control-token names that end a turn, as llama.cpp recognises them.
const END_OF_TURN: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
];

/// True when `name` is an end-of-turn token name.
pub(crate) fn is_end_of_turn(name: &str) -> bool {
    END_OF_TURN.contains(&name)
}

/// Control tokens (special) and user-defined tokens (always matched, not special) as added
/// tokens. `spelled` is the token as the model vocabulary holds it; a token whose spelling
/// differs from the file's is skipped, as transformers does.
pub(crate) fn added_tokens(
    spec: &TokenizerSpec,
    spelled: &[String],
) -> (Vec<AddedToken>, Vec<AddedToken>) {
    let mut control = Vec::new();
    let mut user = Vec::new();
    for (i, (tok, vocab_tok)) in spec.tokens.iter().zip(spelled).enumerate() {
        if tok != vocab_tok || tok.is_empty() {
            continue;
        }
        match spec.token_type(i) {
            token_type::CONTROL => {
                control.push(AddedToken::from(tok.clone(), true).normalized(false))
            }
            token_type::USER_DEFINED => {
                user.push(AddedToken::from(tok.clone(), false).normalized(false))
            }
            _ => {}
        }
    }
    (control, user)
}

/// EOS first, then every other control token that ends a turn.
pub(crate) fn eos_ids(spec: &TokenizerSpec) -> Vec<u32> {
    let mut ids: Vec<u32> = spec.eos_id.into_iter().collect();
    for (i, tok) in spec.tokens.iter().enumerate() {
        let id = i as u32;
        if spec.token_type(i) == token_type::CONTROL && is_end_of_turn(tok) && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}
