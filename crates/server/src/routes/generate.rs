//! `POST /v1/chat/completions` and `POST /v1/completions`: validate, render and tokenize
//! the prompt off the async threads, then run the job.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::fields::Fields;
use crate::format::{Api, Shape};
use crate::gen;
use crate::routes::{check_model, read_json};
use crate::schema::{self, Job, Prompt};
use crate::state::{unix_now, AppState};

/// Chat completions.
pub async fn chat(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    handle(s, headers, body, Api::Chat).await
}

/// Text completions.
pub async fn completions(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(s, headers, body, Api::Completion).await
}

async fn handle(s: Arc<AppState>, headers: HeaderMap, body: Body, api: Api) -> Response {
    let started = Instant::now();
    if s.engine.is_draining() {
        return ApiError::unavailable("the server is shutting down").into_response();
    }
    let job = match prepare(&s, &headers, body, api).await {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    let prefix = if api == Api::Chat { "chatcmpl" } else { "cmpl" };
    let shape = Shape {
        api,
        id: format!("{prefix}-{}", request_id()),
        created: unix_now(),
        model: s.opts.served_model_name.clone(),
    };
    gen::run(s, job, shape, started).await
}

async fn prepare(
    s: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    api: Api,
) -> Result<Job, ApiError> {
    let v = read_json(s, headers, body).await?;
    let f = Fields::new(&v)?;
    check_model(s, &f)?;
    let opts = schema::options(&f, &s.limits, api == Api::Chat)?;
    let model = s.engine.model().clone();
    let (tokens, param) = match api {
        Api::Chat => {
            let msgs = schema::messages(&f)?;
            let t = tokio::task::spawn_blocking(move || {
                let text = model
                    .render_chat(&msgs)
                    .map_err(|e| ApiError::invalid("messages", format!("chat template: {e}")))?;
                model
                    .encode_prompt(&text)
                    .map_err(|e| ApiError::invalid("messages", format!("tokenizing: {e}")))
            })
            .await
            .map_err(|_| ApiError::internal())??;
            (t, "messages")
        }
        Api::Completion => {
            let t = match schema::prompt(&f, &model)? {
                Prompt::Tokens(t) => t,
                Prompt::Text(text) => tokio::task::spawn_blocking(move || {
                    model
                        .encode_prompt(&text)
                        .map_err(|e| ApiError::invalid("prompt", format!("tokenizing: {e}")))
                })
                .await
                .map_err(|_| ApiError::internal())??,
            };
            (t, "prompt")
        }
    };
    schema::job(opts, tokens, param, &s.limits)
}

/// A unique request id: time and a process-wide counter.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:06x}", unix_now(), n)
}
