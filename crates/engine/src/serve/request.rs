//! What a client hands the serving engine and what it gets back: requests, streamed events,
//! usage and the configuration of the engine.

use crate::generate::FinishReason;
use crate::sampler::SamplingParams;
use marlin_models::kv_cache::KvDtype;

/// One generation request: `n` completions of `prompt`.
#[derive(Debug, Clone)]
pub struct GenRequest {
    /// Prompt token ids (non-empty, inside the vocabulary).
    pub prompt: Vec<u32>,
    /// Sampling and stopping. With a seed, choice `i` samples with seed `seed + i`.
    pub params: SamplingParams,
    /// Completions to generate; they share the prompt's KV blocks (copy-on-write).
    pub n: usize,
    /// `Some(k)`: report each sampled token's log-probability and the `k` most likely.
    pub logprobs: Option<usize>,
}

/// A token and its log-probability, with its text.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenProb {
    /// Token id.
    pub id: u32,
    /// The token's own text (lossy UTF-8 of its bytes).
    pub token: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Natural-log probability under the model (before penalties and filters).
    pub logprob: f32,
}

/// Log-probabilities of one sampled token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprobs {
    /// The sampled token.
    pub chosen: TokenProb,
    /// The most likely tokens, most likely first.
    pub top: Vec<TokenProb>,
}

/// Token counts of a finished request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens generated over all choices.
    pub completion_tokens: usize,
    /// Prompt tokens whose KV came from the prefix cache (first admission).
    pub cached_tokens: usize,
}

/// What the engine streams back for a request, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Choice `index` sampled a token; `text` is the text it settled (may be empty while a
    /// character or a possible stop string is incomplete).
    Token {
        index: usize,
        id: u32,
        text: String,
        logprobs: Option<TokenLogprobs>,
    },
    /// Choice `index` ended; `text` is the rest of its text.
    Finished {
        index: usize,
        text: String,
        reason: FinishReason,
    },
    /// Every choice ended.
    Done(Usage),
    /// The request failed; nothing follows.
    Error(String),
}

/// Where a request's events go. Returning false means the client is gone: the request is
/// cancelled and its KV blocks freed.
pub trait EventSink: Send {
    /// Delivers one event.
    fn send(&mut self, event: Event) -> bool;
}

impl<F: FnMut(Event) -> bool + Send> EventSink for F {
    fn send(&mut self, event: Event) -> bool {
        self(event)
    }
}

/// Limits of the serving engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most sequences in one step.
    pub max_num_seqs: usize,
    /// Most tokens in one step (decode tokens plus prefill chunks).
    pub max_batched_tokens: usize,
    /// KV blocks of [`crate::blocks::BLOCK_SIZE`] tokens.
    pub num_blocks: usize,
    /// Most requests admitted at once (running and queued); more are refused.
    pub max_requests: usize,
    /// Share full prompt blocks between requests through the prefix cache.
    pub prefix_caching: bool,
    /// Make a sequence's tokens independent of what shares its batch (CPU: every step
    /// padded to whole 4-token matmul tiles, so a lone decode runs a 4-token GEMM instead
    /// of the GEMV: measured 2.6x slower at one stream, 1.4x at 32, on SmolLM2-135M).
    pub batch_invariant: bool,
    /// Element type of the K/V cache (FP8/INT8 on the CPU only; the GPU refuses them).
    pub kv_dtype: KvDtype,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_num_seqs: 64,
            max_batched_tokens: 512,
            num_blocks: 1024,
            max_requests: 256,
            prefix_caching: true,
            batch_invariant: false,
            kv_dtype: KvDtype::F16,
        }
    }
}
