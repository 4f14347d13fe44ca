//! Route handlers and what they share: reading a bounded JSON body and checking `model`.

pub mod generate;
pub mod info;
pub mod perplexity;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use serde_json::Value;

use crate::error::ApiError;
use crate::fields::Fields;
use crate::state::AppState;

/// Reads the body (refusing it past the limit without buffering the rest) and parses it as
/// JSON. A content type other than JSON is refused.
pub async fn read_json(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ok = ct
            .to_str()
            .map(|s| {
                s.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            })
            .unwrap_or(false);
        if !ok {
            return Err(ApiError::bad_request(
                "the content type must be application/json",
            ));
        }
    }
    let limit = state.opts.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let bytes = tokio::time::timeout(state.opts.body_timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::timeout())?
        .map_err(|_| ApiError::too_large(limit))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// Checks `model` (when given) against the served name.
pub fn check_model(state: &AppState, f: &Fields) -> Result<(), ApiError> {
    match f.str("model")? {
        Some(m) if m != state.opts.served_model_name => Err(ApiError::model_not_found(m)),
        _ => Ok(()),
    }
}
