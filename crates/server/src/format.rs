//! The JSON shapes of OpenAI responses: chat and text completions, whole or as stream
//! chunks, with usage and log-probabilities.

use marlin_engine::serve::{TokenLogprobs, TokenProb, Usage};
use marlin_engine::FinishReason;
use serde_json::{json, Value};

/// Which API a response belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Completion,
}

/// Builds the response objects of one request.
#[derive(Debug, Clone)]
pub struct Shape {
    pub api: Api,
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// One choice gathered for a non-streamed response.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub text: String,
    pub logprobs: Vec<TokenLogprobs>,
    pub finish: Option<FinishReason>,
}

fn prob_json(p: &TokenProb) -> Value {
    json!({"token": p.token, "logprob": p.logprob, "bytes": p.bytes})
}

/// Chat's per-token log-probability entry.
fn chat_logprob(lp: &TokenLogprobs) -> Value {
    let mut v = prob_json(&lp.chosen);
    v["top_logprobs"] = lp.top.iter().map(prob_json).collect();
    v
}

/// The legacy completions `logprobs` object of `lps`, whose text starts at `offset`.
fn completion_logprobs(lps: &[TokenLogprobs], offset: usize) -> Value {
    let mut at = offset;
    let mut offsets = Vec::with_capacity(lps.len());
    for lp in lps {
        offsets.push(at);
        at += lp.chosen.token.len();
    }
    json!({
        "tokens": lps.iter().map(|l| l.chosen.token.clone()).collect::<Vec<_>>(),
        "token_logprobs": lps.iter().map(|l| l.chosen.logprob).collect::<Vec<_>>(),
        "top_logprobs": lps.iter().map(|l| {
            l.top.iter().map(|t| (t.token.clone(), json!(t.logprob))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

/// OpenAI's `usage` object.
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

impl Shape {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.api, chunk) {
            (Api::Chat, false) => "chat.completion",
            (Api::Chat, true) => "chat.completion.chunk",
            (Api::Completion, _) => "text_completion",
        }
    }

    fn envelope(&self, chunk: bool, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": choices,
        })
    }

    /// The whole non-streamed response.
    pub fn full(&self, choices: &[Choice], usage: &Usage) -> Value {
        let list = choices
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let reason = c.finish.map(FinishReason::as_str);
                match self.api {
                    Api::Chat => json!({
                        "index": i,
                        "message": {"role": "assistant", "content": c.text},
                        "logprobs": (!c.logprobs.is_empty()).then(|| json!({
                            "content": c.logprobs.iter().map(chat_logprob).collect::<Vec<_>>()
                        })),
                        "finish_reason": reason,
                    }),
                    Api::Completion => json!({
                        "index": i,
                        "text": c.text,
                        "logprobs": (!c.logprobs.is_empty()).then(|| completion_logprobs(&c.logprobs, 0)),
                        "finish_reason": reason,
                    }),
                }
            })
            .collect();
        let mut v = self.envelope(false, list);
        v["usage"] = usage_json(usage);
        v
    }

    /// Chat's opening chunk of choice `index` (the assistant role).
    pub fn role_chunk(&self, index: usize) -> Value {
        self.envelope(
            true,
            vec![json!({
                "index": index,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": null,
                "finish_reason": null,
            })],
        )
    }

    /// A chunk carrying `text` (and the token's log-probabilities) for choice `index`;
    /// `offset` is the choice's text length so far (legacy `text_offset`).
    pub fn text_chunk(
        &self,
        index: usize,
        text: &str,
        lp: Option<&TokenLogprobs>,
        offset: usize,
    ) -> Value {
        let choice = match self.api {
            Api::Chat => json!({
                "index": index,
                "delta": {"content": text},
                "logprobs": lp.map(|l| json!({"content": [chat_logprob(l)]})),
                "finish_reason": null,
            }),
            Api::Completion => json!({
                "index": index,
                "text": text,
                "logprobs": lp.map(|l| completion_logprobs(std::slice::from_ref(l), offset)),
                "finish_reason": null,
            }),
        };
        self.envelope(true, vec![choice])
    }

    /// The chunk that ends choice `index`.
    pub fn finish_chunk(&self, index: usize, reason: FinishReason) -> Value {
        let choice = match self.api {
            Api::Chat => json!({
                "index": index,
                "delta": {},
                "logprobs": null,
                "finish_reason": reason.as_str(),
            }),
            Api::Completion => json!({
                "index": index,
                "text": "",
                "logprobs": null,
                "finish_reason": reason.as_str(),
            }),
        };
        self.envelope(true, vec![choice])
    }

    /// The closing usage chunk (`stream_options.include_usage`): no choices.
    pub fn usage_chunk(&self, usage: &Usage) -> Value {
        let mut v = self.envelope(true, Vec::new());
        v["usage"] = usage_json(usage);
        v
    }
}
