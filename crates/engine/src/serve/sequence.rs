//! `Sequence`: one choice of a request as it moves through the scheduler (tokens, KV block
//! table, sampler and text state), and turning a sampled token into events.

use marlin_models::tokenizer::{StreamState, Tokenizer};

use crate::blocks::BlockTable;
use crate::generate::FinishReason;
use crate::sampler::{token_logprob, top_logprobs, Sampler, SamplingParams, StopChecker};
use crate::serve::request::{Event, TokenLogprobs, TokenProb};
use crate::Result;

/// One sequence: `tokens[..computed]` have their K/V in the blocks of `table`.
pub(crate) struct Sequence {
    pub req: u64,
    pub index: usize,
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub computed: usize,
    pub table: BlockTable,
    /// Prefix-cache key chain of the full blocks already offered to the cache.
    pub keys: Vec<u64>,
    pub sampler: Sampler,
    pub stop: StopChecker,
    pub decoder: StreamState,
    pub generated: usize,
    pub done: bool,
}

impl Sequence {
    /// Choice `index` of request `req`.
    pub fn new(req: u64, index: usize, prompt: Vec<u32>, params: &SamplingParams) -> Self {
        Self {
            req,
            index,
            prompt_len: prompt.len(),
            tokens: prompt,
            computed: 0,
            table: BlockTable::new(),
            keys: Vec::new(),
            sampler: Sampler::new(&seeded(params, index)),
            stop: StopChecker::new(params.stop.clone()),
            decoder: StreamState::new(true),
            generated: 0,
            done: false,
        }
    }

    /// Tokens still to run through the model.
    pub fn remaining(&self) -> usize {
        self.tokens.len() - self.computed
    }

    /// A sibling choice `index` sharing this sequence's state and KV blocks (`table` is the
    /// forked table).
    pub fn fork(&self, index: usize, table: BlockTable) -> Self {
        Self {
            req: self.req,
            index,
            tokens: self.tokens.clone(),
            prompt_len: self.prompt_len,
            computed: self.computed,
            table,
            keys: self.keys.clone(),
            sampler: Sampler::new(&seeded(self.sampler.params(), index)),
            stop: self.stop.clone(),
            decoder: self.decoder.clone(),
            generated: self.generated,
            done: false,
        }
    }

    /// Samples the next token from `logits` (modified) and returns the events it makes and
    /// whether the sequence finished. `capacity` is the most tokens a sequence may hold.
    pub fn sample(
        &mut self,
        tok: &Tokenizer,
        logits: &mut [f32],
        logprobs: Option<usize>,
        capacity: usize,
    ) -> Result<(Vec<Event>, bool)> {
        let top = logprobs.map(|k| top_logprobs(logits, k));
        let raw = logprobs.is_some().then(|| logits.to_vec());
        let id = self.sampler.sample(logits, &self.tokens);
        let lp = match (top, raw) {
            (Some(top), Some(raw)) => Some(TokenLogprobs {
                chosen: token_prob(tok, id, token_logprob(&raw, id).unwrap_or(f32::NAN)),
                top: top
                    .iter()
                    .map(|t| token_prob(tok, t.id, t.logprob))
                    .collect(),
            }),
            _ => None,
        };
        self.accept(tok, id, lp, capacity)
    }

    /// Appends token `id` and returns its events and whether the sequence finished.
    pub fn accept(
        &mut self,
        tok: &Tokenizer,
        id: u32,
        logprobs: Option<TokenLogprobs>,
        capacity: usize,
    ) -> Result<(Vec<Event>, bool)> {
        let params = self.sampler.params();
        let (max_tokens, ignore_eos) = (params.max_tokens, params.ignore_eos);
        self.tokens.push(id);
        self.generated += 1;
        let index = self.index;
        let mut events = Vec::with_capacity(2);
        let token = |text: String, logprobs| Event::Token {
            index,
            id,
            text,
            logprobs,
        };
        let finish = |text: String, reason| Event::Finished {
            index,
            text,
            reason,
        };
        if tok.is_eos(id) && !ignore_eos {
            events.push(token(String::new(), logprobs));
            events.push(finish(self.stop.flush(), FinishReason::Stop));
            return Ok((events, true));
        }
        let piece = self.decoder.push(tok, id)?;
        let (out, hit) = self.stop.push(&piece);
        events.push(token(out, logprobs));
        if hit {
            events.push(finish(String::new(), FinishReason::Stop));
            return Ok((events, true));
        }
        if self.generated >= max_tokens || self.tokens.len() >= capacity {
            let tail = self.decoder.finish(tok)?;
            let (mut out, hit) = self.stop.push(&tail);
            if !hit {
                out.push_str(&self.stop.flush());
            }
            let reason = if hit {
                FinishReason::Stop
            } else {
                FinishReason::Length
            };
            events.push(finish(out, reason));
            return Ok((events, true));
        }
        Ok((events, false))
    }
}

/// `params` with the seed of choice `index` (`seed + index`), so that every choice of a
/// seeded request is reproducible and the choices differ.
fn seeded(params: &SamplingParams, index: usize) -> SamplingParams {
    let mut p = params.clone();
    if index > 0 {
        p.seed = p.seed.map(|s| s.wrapping_add(index as u64));
    }
    p
}

fn token_prob(tok: &Tokenizer, id: u32, logprob: f32) -> TokenProb {
    let bytes = tok.token_bytes(id).unwrap_or_default();
    TokenProb {
        id,
        token: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
        logprob,
    }
}
