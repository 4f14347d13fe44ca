//! `POST /v1/perplexity`: the perplexity of a text (or token ids) under the model, scored
//! in one window on the engine thread. Body: `{"model"?, "text" | "prompt"}`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::fields::Fields;
use crate::routes::{check_model, read_json};
use crate::schema::{self, Prompt};
use crate::state::AppState;

/// Scores the text and answers `{"perplexity", "nll", "tokens", "token_logprobs"}`.
pub async fn perplexity(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match score(&s, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn score(s: &Arc<AppState>, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let v = read_json(s, headers, body).await?;
    let f = Fields::new(&v)?;
    check_model(s, &f)?;
    let model = s.engine.model().clone();
    let (prompt, param) = match f.str("text")? {
        Some(t) => (Prompt::Text(t.to_string()), "text"),
        None => (schema::prompt(&f, &model)?, "prompt"),
    };
    let tokens = match prompt {
        Prompt::Tokens(t) => t,
        Prompt::Text(text) => tokio::task::spawn_blocking(move || model.encode_prompt(&text))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|e| ApiError::invalid(param, format!("tokenizing: {e}")))?,
    };
    if tokens.len() < 2 {
        return Err(ApiError::invalid(
            param,
            "the text must have at least 2 tokens",
        ));
    }
    let cap = s.limits.capacity;
    if tokens.len() > cap {
        return Err(ApiError::context_length(
            param,
            format!("This model's maximum context length is {cap} tokens. However, the text has {} tokens.", tokens.len()),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.engine.score(
        tokens,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    let lps = rx.await.map_err(|_| ApiError::internal())??;
    let n = lps.len().max(1);
    let nll = -lps.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    Ok(Json(json!({
        "object": "perplexity",
        "model": s.opts.served_model_name,
        "perplexity": nll.exp(),
        "nll": nll,
        "tokens": lps.len(),
        "token_logprobs": lps,
    }))
    .into_response())
}
