//! `StreamDecoder`: incremental detokenization for streamed generation.
//!
//! Decoding token by token is wrong in two ways: a token may end inside a UTF-8 character
//! (byte-level and `<0xNN>` tokens), and decoders may treat the first token of a sequence
//! differently (SentencePiece drops its leading space). So, as text-generation-inference
//! does, the decoder keeps a window of recent ids, decodes the window with and without the
//! new ids, and emits the difference only once it no longer ends in a replacement character.
//!
//! [`StreamState`] owns no tokenizer (store it per sequence); [`StreamDecoder`] pairs it with
//! a borrowed one for local loops.

use super::Tokenizer;
use crate::Result;

/// A character cut in UTF-8 needs at most 4 byte tokens to complete; after that many ids
/// with no emission the replacement character is real and is let through.
const MAX_PENDING: usize = 4;

/// The state of an incremental decode; the tokenizer is passed to each call.
#[derive(Debug, Clone, Default)]
pub struct StreamState {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
    skip_special: bool,
}

impl StreamState {
    /// A new state; `skip_special` drops control tokens from the text.
    pub fn new(skip_special: bool) -> Self {
        Self {
            skip_special,
            ..Self::default()
        }
    }

    /// A state whose text continues after `context` (e.g. the prompt): the first pushed
    /// token is decoded as a continuation, not as the start of a text.
    pub fn with_context(context: &[u32], skip_special: bool) -> Self {
        let keep = context.len().min(MAX_PENDING + 1);
        let ids = context[context.len() - keep..].to_vec();
        Self {
            read_offset: ids.len(),
            ids,
            prefix_offset: 0,
            skip_special,
        }
    }

    /// Add one id; returns the text it completes (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        self.step(tok, false)
    }

    /// Add several ids; returns the text they complete.
    pub fn push_all(&mut self, tok: &Tokenizer, ids: &[u32]) -> Result<String> {
        self.ids.extend_from_slice(ids);
        self.step(tok, false)
    }

    /// Emit whatever is held back (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self, tok: &Tokenizer) -> Result<String> {
        self.step(tok, true)
    }

    /// All ids pushed so far (after any context window).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    fn step(&mut self, tok: &Tokenizer, flush: bool) -> Result<String> {
        if self.read_offset >= self.ids.len() {
            return Ok(String::new());
        }
        let window = &self.ids[self.prefix_offset..];
        let prefix = tok.decode(
            &self.ids[self.prefix_offset..self.read_offset],
            self.skip_special,
        )?;
        let full = tok.decode(window, self.skip_special)?;
        let pending = self.ids.len() - self.read_offset;
        let complete = !full.ends_with('\u{FFFD}') || pending >= MAX_PENDING || flush;
        if !complete {
            return Ok(String::new());
        }
        let text = match full.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.to_string(),
            // The decoder rewrote earlier text; emit the part past the old length.
            None => full
                .char_indices()
                .find(|&(i, _)| i >= prefix.len())
                .map(|(i, _)| full[i..].to_string())
                .unwrap_or_default(),
        };
        if text.is_empty() && !flush {
            return Ok(text);
        }
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(text)
    }
}

/// Turns a stream of ids into text pieces that never split a character.
#[derive(Debug, Clone)]
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    state: StreamState,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder over `tok` that drops control tokens from the text.
    pub fn new(tok: &'a Tokenizer) -> Self {
        Self::with_state(tok, StreamState::new(true))
    }

    /// A decoder over `tok` continuing `state` (see [`StreamState::new`] and
    /// [`StreamState::with_context`]).
    pub fn with_state(tok: &'a Tokenizer, state: StreamState) -> Self {
        Self { tok, state }
    }

    /// Add one id; returns the text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.state.push(self.tok, id)
    }

    /// Add several ids; returns the text they complete.
    pub fn push_all(&mut self, ids: &[u32]) -> Result<String> {
        self.state.push_all(self.tok, ids)
    }

    /// Emit whatever is held back (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> Result<String> {
        self.state.finish(self.tok)
    }

    /// The state, to store without the tokenizer borrow.
    pub fn into_state(self) -> StreamState {
        self.state
    }
}
