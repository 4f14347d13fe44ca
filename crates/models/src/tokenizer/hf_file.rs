//! Loading a Hugging Face `tokenizer.json`, with the BOS/EOS names and chat template of a
//! `tokenizer_config.json` beside it when there is one.

use std::path::Path;

use serde_json::Value;
use tokenizers::{DecoderWrapper, Tokenizer as HfTokenizer};

use super::codec::{hf_err, Spelling, Tokenizer};
use super::special::is_end_of_turn;
use crate::{Error, Result};

fn spelling_of(t: &HfTokenizer) -> Spelling {
    match t.get_decoder() {
        Some(DecoderWrapper::ByteLevel(_)) => Spelling::ByteLevel,
        Some(DecoderWrapper::Sequence(_)) | Some(DecoderWrapper::ByteFallback(_))
            if t.token_to_id("<0x0A>").is_some() =>
        {
            Spelling::SentencePiece
        }
        _ => Spelling::Decoder,
    }
}

/// A token named in `tokenizer_config.json`: a string or `{"content": ...}`.
fn token_name(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content")?.as_str(),
        _ => None,
    }
}

/// The default chat template: a string, or the entry named "default" of a list.
fn template_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .find(|it| it.get("name").and_then(Value::as_str) == Some("default"))
            .or_else(|| items.first())
            .and_then(|it| it.get("template")?.as_str().map(str::to_string)),
        _ => None,
    }
}

impl Tokenizer {
    /// Load `tokenizer.json`; BOS/EOS names and the chat template come from a
    /// `tokenizer_config.json` in the same folder, if present. Special tokens are added by
    /// the file's own post-processor.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner = HfTokenizer::from_file(path)
            .map_err(|e| hf_err(&format!("loading {}", path.display()), e))?;
        let spelling = spelling_of(&inner);
        let mut tok = Tokenizer::from_parts(inner, spelling);
        let config_path = path.with_file_name("tokenizer_config.json");
        let config: Value = match std::fs::read(&config_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Tokenizer(format!("{}: {e}", config_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
            Err(source) => {
                return Err(Error::Io {
                    path: config_path,
                    source,
                })
            }
        };
        tok.bos_id = token_name(config.get("bos_token")).and_then(|n| tok.token_id(n));
        tok.add_bos = config
            .get("add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        tok.add_eos = config
            .get("add_eos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut eos: Vec<u32> = token_name(config.get("eos_token"))
            .and_then(|n| tok.token_id(n))
            .into_iter()
            .collect();
        let mut turn_ends: Vec<u32> = tok
            .special
            .iter()
            .copied()
            .filter(|&id| tok.token_str(id).is_some_and(|s| is_end_of_turn(&s)))
            .filter(|id| !eos.contains(id))
            .collect();
        turn_ends.sort_unstable();
        eos.extend(turn_ends);
        tok.eos_ids = eos;
        tok.chat_template = template_of(config.get("chat_template"));
        Ok(tok)
    }
}
