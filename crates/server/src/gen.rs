//! Running a validated `Job` on the engine and answering with one JSON response or an SSE
//! stream of chunks ending in `data: [DONE]`. The request's guard lives in the response
//! (future or body stream): when the client goes away it is dropped and the engine cancels
//! the request and frees its KV blocks.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use marlin_engine::serve::{Event, GenRequest, RequestGuard};
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::error::ApiError;
use crate::format::{Choice, Shape};
use crate::schema::Job;
use crate::state::AppState;

/// Submits `job` and answers in `shape`'s API, streamed when the job asks for it.
pub async fn run(state: Arc<AppState>, job: Job, shape: Shape, started: Instant) -> Response {
    let (tx, rx) = unbounded_channel();
    let req = GenRequest {
        prompt: job.prompt,
        params: job.params,
        n: job.n,
        logprobs: job.logprobs,
    };
    let sink = move |e: Event| tx.send(e).is_ok();
    let guard = match state.engine.submit(req, Box::new(sink)) {
        Ok(g) => g,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let timer = Timer {
        state,
        started,
        first: None,
        tokens: 0,
    };
    if job.stream {
        stream(rx, guard, shape, job.n, job.include_usage, timer)
    } else {
        collect(rx, guard, shape, job.n, timer).await
    }
}

/// Latency bookkeeping of one request for the histograms.
struct Timer {
    state: Arc<AppState>,
    started: Instant,
    first: Option<Instant>,
    tokens: usize,
}

impl Timer {
    fn token(&mut self) {
        self.tokens += 1;
        if self.first.is_none() {
            let now = Instant::now();
            self.first = Some(now);
            self.state.metrics.ttft((now - self.started).as_secs_f64());
        }
    }

    fn done(&self) {
        let m = &self.state.metrics;
        m.e2e(self.started.elapsed().as_secs_f64());
        if let (Some(f), true) = (self.first, self.tokens > 1) {
            m.tpot(f.elapsed().as_secs_f64() / (self.tokens - 1) as f64);
        }
    }
}

async fn collect(
    mut rx: UnboundedReceiver<Event>,
    guard: RequestGuard,
    shape: Shape,
    n: usize,
    mut timer: Timer,
) -> Response {
    let mut choices = vec![Choice::default(); n];
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token {
                index,
                text,
                logprobs,
                ..
            } => {
                timer.token();
                if let Some(c) = choices.get_mut(index) {
                    c.text.push_str(&text);
                    c.logprobs.extend(logprobs);
                }
            }
            Event::Finished {
                index,
                text,
                reason,
            } => {
                if let Some(c) = choices.get_mut(index) {
                    c.text.push_str(&text);
                    c.finish = Some(reason);
                }
            }
            Event::Done(usage) => {
                timer.done();
                drop(guard);
                return axum::Json(shape.full(&choices, &usage)).into_response();
            }
            Event::Error(m) => return engine_error(&m).into_response(),
        }
    }
    engine_error("the engine dropped the request").into_response()
}

fn engine_error(msg: &str) -> ApiError {
    tracing::error!("request failed in the engine: {msg}");
    let mut e = ApiError::internal();
    e.message = format!("generation failed: {msg}");
    e
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// State of one SSE stream.
struct Streamer {
    rx: UnboundedReceiver<Event>,
    _guard: RequestGuard,
    shape: Shape,
    include_usage: bool,
    timer: Timer,
    offsets: Vec<usize>,
    finished: bool,
}

impl Streamer {
    /// The SSE frames of the next event; `None` at the end of the stream.
    async fn next_frames(&mut self) -> Option<Vec<Bytes>> {
        if self.finished {
            return None;
        }
        let Some(ev) = self.rx.recv().await else {
            self.finished = true;
            return Some(vec![sse(
                &engine_error("the engine dropped the request").body()
            )]);
        };
        let mut out = Vec::new();
        match ev {
            Event::Token {
                index,
                text,
                logprobs,
                ..
            } => {
                self.timer.token();
                if !text.is_empty() || logprobs.is_some() {
                    let off = self.offsets.get(index).copied().unwrap_or(0);
                    out.push(sse(&self.shape.text_chunk(
                        index,
                        &text,
                        logprobs.as_ref(),
                        off,
                    )));
                    if let Some(o) = self.offsets.get_mut(index) {
                        *o += text.len();
                    }
                }
            }
            Event::Finished {
                index,
                text,
                reason,
            } => {
                if !text.is_empty() {
                    let off = self.offsets.get(index).copied().unwrap_or(0);
                    out.push(sse(&self.shape.text_chunk(index, &text, None, off)));
                }
                out.push(sse(&self.shape.finish_chunk(index, reason)));
            }
            Event::Done(usage) => {
                self.timer.done();
                if self.include_usage {
                    out.push(sse(&self.shape.usage_chunk(&usage)));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                self.finished = true;
            }
            Event::Error(m) => {
                out.push(sse(&engine_error(&m).body()));
                self.finished = true;
            }
        }
        Some(out)
    }
}

fn stream(
    rx: UnboundedReceiver<Event>,
    guard: RequestGuard,
    shape: Shape,
    n: usize,
    include_usage: bool,
    timer: Timer,
) -> Response {
    let opening: Vec<Bytes> = if shape.api == crate::format::Api::Chat {
        (0..n).map(|i| sse(&shape.role_chunk(i))).collect()
    } else {
        Vec::new()
    };
    let st = Streamer {
        rx,
        _guard: guard,
        shape,
        include_usage,
        timer,
        offsets: vec![0; n],
        finished: false,
    };
    let frames = futures_util::stream::unfold(st, |mut st| async move {
        let frames = st.next_frames().await?;
        Some((frames, st))
    });
    let body = futures_util::StreamExt::flat_map(frames, |f| {
        futures_util::stream::iter(f.into_iter().map(Ok::<_, Infallible>))
    });
    let opening = futures_util::stream::iter(opening.into_iter().map(Ok::<_, Infallible>));
    let body = Body::from_stream(futures_util::StreamExt::chain(opening, body));
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
