//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): vocabulary, merges and the
//! pre-tokenizer that `tokenizer.ggml.pre` names (formats_digest §8).

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

use super::spec::TokenizerSpec;
use crate::{Error, Result};

/// Llama-3's split regex (also Falcon-3, DBRX, Smaug, Pixtral).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's split regex: Llama-3's with single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How the text is cut before BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreKind {
    /// The GPT-2 regex (ByteLevel's own).
    Gpt2,
    /// Every digit alone, then the GPT-2 regex (SmolLM, StarCoder, Refact).
    DigitsThenGpt2,
    /// A custom regex, then byte mapping; `ignore_merges` as llama.cpp does for Llama-3.
    Regex(&'static str, bool),
}

fn pre_kind(pre: Option<&str>) -> PreKind {
    match pre {
        Some("gpt-2" | "gpt2" | "default") | None => PreKind::Gpt2,
        Some("smollm" | "starcoder" | "refact" | "codeshell") => PreKind::DigitsThenGpt2,
        Some(
            "llama-bpe" | "llama3" | "llama-v3" | "falcon3" | "dbrx" | "smaug-bpe" | "pixtral",
        ) => PreKind::Regex(LLAMA3_SPLIT, true),
        Some("qwen2" | "deepseek-r1-qwen" | "megrez") => PreKind::Regex(QWEN2_SPLIT, false),
        Some(other) => {
            tracing::warn!(pre = other, "unknown pre-tokenizer; using the GPT-2 regex");
            PreKind::Gpt2
        }
    }
}

/// The GPT-2 byte → char table (formats_digest §8.2).
pub(crate) fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        let code = if printable {
            b as u32
        } else {
            next += 1;
            0x100 + next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\0');
    }
    table
}

/// A token spelled in the byte alphabet; tokens spelled otherwise are re-spelled from
/// their UTF-8 bytes, as transformers does.
fn respell(token: &str, table: &[char; 256], alphabet: &[bool]) -> String {
    let in_alphabet = token
        .chars()
        .all(|c| (c as usize) < alphabet.len() && alphabet[c as usize]);
    if in_alphabet {
        token.to_string()
    } else {
        token.bytes().map(|b| table[b as usize]).collect()
    }
}

/// Build the model and pre-tokenizer of a byte-level BPE vocabulary.
pub(crate) fn build(spec: &TokenizerSpec) -> Result<(BPE, PreTokenizerWrapper)> {
    let table = byte_to_char();
    let mut alphabet = vec![false; 0x200];
    for c in table {
        alphabet[c as usize] = true;
    }
    let vocab: Vocab = spec
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (respell(t, &table, &alphabet), i as u32))
        .collect();
    let merges = spec
        .merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| Error::Tokenizer(format!("merge `{m}` has no space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let kind = pre_kind(spec.pre.as_deref());
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(matches!(kind, PreKind::Regex(_, true)))
        .build()
        .map_err(|e| Error::Tokenizer(format!("building BPE: {e}")))?;
    let byte_level =
        |use_regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, use_regex));
    let pre = match kind {
        PreKind::Gpt2 => byte_level(true),
        PreKind::DigitsThenGpt2 => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            byte_level(true),
        ])),
        PreKind::Regex(re, _) => {
            let split = Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex: {e}")))?;
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split),
                byte_level(false),
            ]))
        }
    };
    Ok((bpe, pre))
}

/// The decoder of byte-level vocabularies.
pub(crate) fn decoder() -> tokenizers::DecoderWrapper {
    tokenizers::DecoderWrapper::ByteLevel(ByteLevelDecoder::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_gpt2() {
        let t = byte_to_char();
        assert_eq!(t[b' ' as usize], '\u{120}');
        assert_eq!(t[b'\n' as usize], '\u{10A}');
        assert_eq!(t[b'\t' as usize], '\u{109}');
        assert_eq!(t[0x7F], '\u{121}');
        assert_eq!(t[0xAD], '\u{143}');
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[0xFF], '\u{FF}');
    }

    #[test]
    fn unknown_pre_falls_back_to_gpt2() {
        assert_eq!(pre_kind(Some("no-such-pre")), PreKind::Gpt2);
        assert_eq!(pre_kind(Some("smollm")), PreKind::DigitsThenGpt2);
        assert_eq!(pre_kind(Some("qwen2")), PreKind::Regex(QWEN2_SPLIT, false));
    }
}
