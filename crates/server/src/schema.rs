//! Decoding and validating `/v1/chat/completions` and `/v1/completions` bodies into a
//! `Job` (prompt tokens, sampling parameters, choices, streaming options). Ranges follow
//! OpenAI's: temperature 0–2, top_p 0–1, penalties −2..2, n ≤ the server's max, stop ≤ 4.

use marlin_engine::sampler::SamplingParams;
use marlin_models::chat::ChatMessage;
use marlin_models::Model;
use serde_json::Value;

use crate::error::ApiError;
use crate::fields::Fields;

type R<T> = std::result::Result<T, ApiError>;

/// Most stop sequences (OpenAI's limit) and their longest length in bytes.
pub const MAX_STOP: usize = 4;
pub const MAX_STOP_LEN: usize = 256;
/// Most alternatives at each position for `top_logprobs` (chat) and `logprobs` (legacy).
pub const MAX_TOP_LOGPROBS: i64 = 20;

/// Limits a request is checked against.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most tokens a sequence holds (prompt + completion).
    pub capacity: usize,
    /// Most choices per request.
    pub max_n: usize,
}

/// A validated generation request.
#[derive(Debug, Clone)]
pub struct Job {
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    pub n: usize,
    /// Alternatives per position when log-probabilities are asked for.
    pub logprobs: Option<usize>,
    pub stream: bool,
    pub include_usage: bool,
}

/// The fields before the prompt is tokenized.
#[derive(Debug, Clone)]
pub struct Options {
    pub params: SamplingParams,
    /// `max_tokens` as given (else the rest of the context).
    pub max_tokens: Option<usize>,
    pub n: usize,
    pub logprobs: Option<usize>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Fields every generation route shares. `chat` selects chat's `logprobs` (a boolean with
/// `top_logprobs`) over the legacy integer form.
pub fn options(f: &Fields, limits: &Limits, chat: bool) -> R<Options> {
    let mut p = SamplingParams {
        temperature: f.number("temperature", 0.0, 2.0)?.unwrap_or(1.0) as f32,
        top_p: f.number("top_p", 0.0, 1.0)?.unwrap_or(1.0) as f32,
        min_p: f.number("min_p", 0.0, 1.0)?.unwrap_or(0.0) as f32,
        presence_penalty: f.number("presence_penalty", -2.0, 2.0)?.unwrap_or(0.0) as f32,
        frequency_penalty: f.number("frequency_penalty", -2.0, 2.0)?.unwrap_or(0.0) as f32,
        repetition_penalty: f.number("repetition_penalty", 0.01, 10.0)?.unwrap_or(1.0) as f32,
        top_k: f.int("top_k", -1, 1 << 20)?.unwrap_or(0).max(0) as usize,
        seed: f.int("seed", i64::MIN, i64::MAX)?.map(|s| s as u64),
        ignore_eos: f.bool("ignore_eos")?.unwrap_or(false),
        stop: f.stop(MAX_STOP, MAX_STOP_LEN)?,
        ..SamplingParams::default()
    };
    if p.top_p == 0.0 {
        // OpenAI allows 0: only the most likely token.
        p.top_p = 1.0;
        p.top_k = 1;
    }
    let cap = limits.capacity as i64;
    let mt = f.int("max_tokens", 1, i64::MAX)?;
    let mct = f.int("max_completion_tokens", 1, i64::MAX)?;
    let max_tokens = mct.or(mt).map(|x| x.min(cap) as usize);
    let n = f.int("n", 1, limits.max_n as i64)?.unwrap_or(1) as usize;
    if let Some(b) = f.int("best_of", 1, limits.max_n as i64)? {
        if b as usize != n {
            return Err(ApiError::unsupported("best_of", "best_of must equal n"));
        }
    }
    let stream = f.bool("stream")?.unwrap_or(false);
    let include_usage = match f.get("stream_options") {
        None => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::invalid(
                    "stream_options",
                    "`stream_options.include_usage` must be a boolean",
                ))
            }
        },
        Some(_) => {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` must be an object",
            ))
        }
    };
    let logprobs = if chat {
        let on = f.bool("logprobs")?.unwrap_or(false);
        let top = f.int("top_logprobs", 0, MAX_TOP_LOGPROBS)?;
        if top.is_some() && !on {
            return Err(ApiError::invalid(
                "top_logprobs",
                "`top_logprobs` needs `logprobs: true`",
            ));
        }
        on.then_some(top.unwrap_or(0) as usize)
    } else {
        f.int("logprobs", 0, MAX_TOP_LOGPROBS)?.map(|k| k as usize)
    };
    unsupported(f)?;
    Ok(Options {
        params: p,
        max_tokens,
        n,
        logprobs,
        stream,
        include_usage,
    })
}

/// Refuses fields this server recognises but does not implement, instead of ignoring them.
fn unsupported(f: &Fields) -> R<()> {
    if let Some(v) = f.get("logit_bias") {
        let Value::Object(m) = v else {
            return Err(ApiError::invalid(
                "logit_bias",
                "`logit_bias` must be an object",
            ));
        };
        if !m.is_empty() {
            return Err(ApiError::unsupported(
                "logit_bias",
                "logit_bias is not supported",
            ));
        }
    }
    for name in ["tools", "functions"] {
        if let Some(Value::Array(a)) = f.get(name) {
            if !a.is_empty() {
                return Err(ApiError::unsupported(
                    name,
                    format!("`{name}` is not supported"),
                ));
            }
        }
    }
    if f.bool("echo")?.unwrap_or(false) {
        return Err(ApiError::unsupported("echo", "echo is not supported"));
    }
    if f.str("suffix")?.is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported("suffix", "suffix is not supported"));
    }
    if let Some(rf) = f.get("response_format") {
        let ok = rf.get("type").and_then(Value::as_str) == Some("text");
        if !ok {
            return Err(ApiError::unsupported(
                "response_format",
                "only response_format {\"type\": \"text\"} is supported",
            ));
        }
    }
    Ok(())
}

/// Completes `opts` with the tokenized `prompt` (the field named `param`): the context
/// check, and `max_tokens` defaulting to the rest of the context.
pub fn job(opts: Options, prompt: Vec<u32>, param: &str, limits: &Limits) -> R<Job> {
    if prompt.is_empty() {
        return Err(ApiError::invalid(
            param,
            format!("`{param}` must not be empty"),
        ));
    }
    let cap = limits.capacity;
    if prompt.len() >= cap {
        return Err(ApiError::context_length(
            param,
            format!(
                "This model's maximum context length is {cap} tokens. However, your prompt has {} tokens.",
                prompt.len()
            ),
        ));
    }
    let max_tokens = match opts.max_tokens {
        Some(m) if prompt.len() + m > cap => {
            return Err(ApiError::context_length(
                "max_tokens",
                format!(
                    "This model's maximum context length is {cap} tokens. However, you requested {} tokens ({} in the prompt, {m} for the completion).",
                    prompt.len() + m,
                    prompt.len()
                ),
            ))
        }
        Some(m) => m,
        None => cap - prompt.len(),
    };
    let mut params = opts.params;
    params.max_tokens = max_tokens;
    params
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Job {
        prompt,
        params,
        n: opts.n,
        logprobs: opts.logprobs,
        stream: opts.stream,
        include_usage: opts.include_usage,
    })
}

/// `messages`: a non-empty array of `{role, content}` with a known role and text content
/// (a string, or an array of `{"type":"text","text":...}` parts).
pub fn messages(f: &Fields) -> R<Vec<ChatMessage>> {
    let bad = |m: &str| ApiError::invalid("messages", m.to_string());
    let list = match f.get("messages") {
        None => return Err(bad("`messages` is required")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("`messages` must be an array")),
    };
    if list.is_empty() {
        return Err(bad("`messages` must contain at least one message"));
    }
    list.iter()
        .map(|m| {
            let Value::Object(o) = m else {
                return Err(bad("each message must be an object"));
            };
            let role = match o.get("role") {
                Some(Value::String(r))
                    if ["system", "developer", "user", "assistant", "tool"]
                        .contains(&r.as_str()) =>
                {
                    if r == "developer" {
                        "system"
                    } else {
                        r.as_str()
                    }
                }
                Some(Value::String(_)) => return Err(bad("unknown message role")),
                _ => return Err(bad("each message needs a string `role`")),
            };
            let content = match o.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None if role == "assistant" => String::new(),
                Some(Value::Array(parts)) => text_parts(parts).ok_or_else(|| {
                    bad("content parts must be objects {\"type\": \"text\", \"text\": string}")
                })?,
                _ => return Err(bad("each message needs a string `content`")),
            };
            Ok(ChatMessage::new(role, content))
        })
        .collect()
}

fn text_parts(parts: &[Value]) -> Option<String> {
    let mut s = String::new();
    for p in parts {
        if p.get("type")?.as_str()? != "text" {
            return None;
        }
        s.push_str(p.get("text")?.as_str()?);
    }
    Some(s)
}

/// `prompt` of `/v1/completions`: a string, a one-element array of strings, an array of
/// token ids, or a one-element array of such arrays. Token ids are checked against the
/// vocabulary.
pub fn prompt(f: &Fields, model: &Model) -> R<Prompt> {
    let bad = |m: &str| ApiError::invalid("prompt", m.to_string());
    let vocab = model.config.vocab as u64;
    let ids = |a: &[Value]| -> R<Vec<u32>> {
        a.iter()
            .map(|v| match v.as_u64() {
                Some(t) if t < vocab => Ok(t as u32),
                _ => Err(bad(&format!("token ids must be integers in 0..{vocab}"))),
            })
            .collect()
    };
    match f.get("prompt") {
        None => Err(bad("`prompt` is required")),
        Some(Value::String(s)) => Ok(Prompt::Text(s.clone())),
        Some(Value::Array(a)) => match a.as_slice() {
            [] => Err(bad("`prompt` must not be empty")),
            [Value::String(s)] => Ok(Prompt::Text(s.clone())),
            [Value::Array(inner)] => Ok(Prompt::Tokens(ids(inner)?)),
            [Value::Number(_), ..] => Ok(Prompt::Tokens(ids(a)?)),
            _ => Err(bad("only one prompt per request is supported")),
        },
        Some(_) => Err(bad("`prompt` must be a string or an array of token ids")),
    }
}

/// A completion prompt before tokenizing.
#[derive(Debug, Clone)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}
