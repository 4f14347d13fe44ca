//! SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`): `▁` for spaces, `<0xNN>`
//! byte fallback, and merges recovered from the vocabulary because the file lists none.
//!
//! Merge recovery follows transformers' `generate_merges`: every split of a token into two
//! in-vocabulary pieces is a merge, ranked by the token's score (best first; ties: longer left
//! piece, then longer right piece, then file order). Gemma files rank by file position instead,
//! since their scores do not follow the merge order.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{DecoderWrapper, PreTokenizerWrapper};

use super::spec::TokenizerSpec;
use crate::{Error, Result};

/// The SentencePiece space marker.
pub(crate) const SPACE: char = '\u{2581}';

fn is_gemma(spec: &TokenizerSpec) -> bool {
    matches!(spec.arch.as_deref(), Some("gemma" | "gemma2" | "gemma3"))
}

/// Gemma files store whitespace-run tokens with real spaces ("  "); the model looks them up
/// as "▁▁", so they are re-spelled (as transformers does).
pub(crate) fn vocab_tokens(spec: &TokenizerSpec) -> Vec<String> {
    if !is_gemma(spec) {
        return spec.tokens.clone();
    }
    spec.tokens
        .iter()
        .map(|t| {
            if t.contains(' ') && t.chars().all(char::is_whitespace) {
                std::iter::repeat_n(SPACE, t.chars().count()).collect()
            } else {
                t.clone()
            }
        })
        .collect()
}

/// The merges a vocabulary implies, best first.
pub(crate) fn derive_merges(tokens: &[String], keys: &[f32]) -> Vec<(String, String)> {
    // Python-dict semantics: a repeated token keeps its first position and its last id/key.
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut key_of: HashMap<&str, f32> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if ids.insert(t.as_str(), i).is_none() {
            order.push(t.as_str());
        }
        key_of.insert(t.as_str(), keys.get(i).copied().unwrap_or(0.0));
    }
    // (key, left chars, right chars, left, right)
    let mut merges: Vec<(f32, usize, usize, &str, &str)> = Vec::new();
    let mut local = Vec::new();
    for &tok in &order {
        let key = key_of.get(tok).copied().unwrap_or(0.0);
        local.clear();
        let nchars = tok.chars().count();
        for (k, (at, _)) in tok.char_indices().enumerate().skip(1) {
            let (l, r) = tok.split_at(at);
            if let (Some(&il), Some(&ir)) = (ids.get(l), ids.get(r)) {
                local.push((il, ir, k, nchars - k, l, r));
            }
        }
        local.sort_by_key(|&(il, ir, ..)| (il, ir));
        merges.extend(
            local
                .iter()
                .map(|&(_, _, nl, nr, l, r)| (key, nl, nr, l, r)),
        );
    }
    // Stable sort, descending on (key, len l, len r), as Python's sort(reverse=True).
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    merges
        .into_iter()
        .map(|(_, _, _, l, r)| (l.to_string(), r.to_string()))
        .collect()
}

/// Build the model, pre-tokenizer and decoder of a SentencePiece-style vocabulary.
pub(crate) fn build(spec: &TokenizerSpec) -> Result<(BPE, PreTokenizerWrapper, DecoderWrapper)> {
    let tokens = vocab_tokens(spec);
    let keys: Vec<f32> = if is_gemma(spec) {
        (0..tokens.len()).map(|i| -(i as f32)).collect()
    } else if spec.scores.len() == tokens.len() {
        spec.scores.clone()
    } else {
        return Err(Error::Tokenizer(
            "SentencePiece vocabulary without scores".into(),
        ));
    };
    let merges = derive_merges(&tokens, &keys);
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .fuse_unk(true)
        .byte_fallback(true);
    if let Some(unk) = spec.unk_id.and_then(|i| tokens.get(i as usize)) {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder
        .build()
        .map_err(|e| Error::Tokenizer(format!("building BPE: {e}")))?;
    let scheme = if spec.add_space_prefix {
        PrependScheme::First
    } else {
        PrependScheme::Never
    };
    let pre = PreTokenizerWrapper::Metaspace(Metaspace::new(SPACE, scheme, false));
    let replace = Replace::new(SPACE.to_string(), " ")
        .map_err(|e| Error::Tokenizer(format!("decoder: {e}")))?;
    let mut steps = vec![
        DecoderWrapper::Replace(replace),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ];
    if spec.add_space_prefix {
        steps.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
    }
    Ok((
        bpe,
        pre,
        DecoderWrapper::Sequence(DecoderSequence::new(steps)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn merges_rank_by_key_then_longer_left() {
        let tokens = s(&["a", "b", "c", "ab", "bc", "abc"]);
        let keys = [0.0, 0.0, 0.0, -1.0, -2.0, -0.5];
        let m = derive_merges(&tokens, &keys);
        let want = [("ab", "c"), ("a", "bc"), ("a", "b"), ("b", "c")];
        let got: Vec<(&str, &str)> = m.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn gemma_space_runs_are_respelled() {
        let spec = TokenizerSpec {
            model: super::super::spec::TokenizerModel::Llama,
            pre: None,
            arch: Some("gemma3".into()),
            tokens: s(&["<unk>", "  ", "a", " \n"]),
            token_types: vec![],
            merges: vec![],
            scores: vec![],
            bos_id: None,
            eos_id: None,
            unk_id: None,
            pad_id: None,
            add_bos: false,
            add_eos: false,
            add_space_prefix: false,
            chat_template: None,
        };
        assert_eq!(vocab_tokens(&spec), s(&["<unk>", "▁▁", "a", "▁▁"]));
    }
}
