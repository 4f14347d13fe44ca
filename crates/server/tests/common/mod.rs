//! Test harness: the real SmolLM2-135M served over loopback, a reqwest client, SSE parsing.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use marlin_engine::serve::{EngineConfig, EngineHandle};
use marlin_models::{Device, Model};
use marlin_server::{AppState, ServerOptions};
use serde_json::Value;
use tokio::sync::oneshot;

pub const NAME: &str = "smollm2-test";

pub fn model() -> Arc<Model> {
    static M: OnceLock<Arc<Model>> = OnceLock::new();
    M.get_or_init(|| {
        let path = marlin_models::source::resolve_model("default")
            .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models.sh)"));
        Arc::new(Model::load(&path, &mut |_, _| {}).unwrap())
    })
    .clone()
}

/// A server on 127.0.0.1:<free port>.
pub struct TestServer {
    pub url: String,
    pub engine: EngineHandle,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        max_num_seqs: 64,
        max_batched_tokens: 256,
        num_blocks: 512,
        max_requests: 256,
        batch_invariant: true,
        ..EngineConfig::default()
    }
}

pub fn options() -> ServerOptions {
    ServerOptions {
        served_model_name: NAME.into(),
        ..ServerOptions::default()
    }
}

pub async fn start(cfg: EngineConfig, opts: ServerOptions) -> TestServer {
    let engine = EngineHandle::start(model(), Device::Cpu, cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(AppState::new(engine.clone(), opts));
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(marlin_server::serve(listener, state, async move {
        let _ = rx.await;
    }));
    TestServer {
        url,
        engine,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        join: Some(join),
    }
}

impl TestServer {
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Streams `body` and returns the parsed `data:` payloads (the last is `[DONE]` as a
    /// string value).
    pub async fn stream(&self, path: &str, body: &Value) -> Vec<Value> {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        parse_sse(&r.text().await.unwrap())
    }

    /// A metric's value from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// Waits until no request is in flight.
    pub async fn wait_idle(&self) {
        let t = Instant::now();
        loop {
            let s = self.engine.stats();
            if s.requests_in_flight == 0 && s.seqs_running == 0 && s.seqs_waiting == 0 {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "never idle: {s:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            j.await.unwrap().unwrap();
        }
    }
}

/// The `data:` payloads of an SSE body; every event must be a `data:` line.
pub fn parse_sse(text: &str) -> Vec<Value> {
    assert!(text.ends_with("\n\n"), "stream not terminated: {text:?}");
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let d = f
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad SSE frame {f:?}"));
            if d == "[DONE]" {
                Value::String(d.into())
            } else {
                serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"))
            }
        })
        .collect()
}

/// Concatenated content of choice `index` in chat (`delta.content`) or completion (`text`)
/// chunks, and its finish reasons.
pub fn stream_text(events: &[Value], index: u64) -> (String, Vec<String>) {
    let mut s = String::new();
    let mut fin = Vec::new();
    for e in events {
        for c in e["choices"].as_array().into_iter().flatten() {
            if c["index"].as_u64() != Some(index) {
                continue;
            }
            if let Some(t) = c["delta"]["content"].as_str().or(c["text"].as_str()) {
                s.push_str(t);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                fin.push(f.to_string());
            }
        }
    }
    (s, fin)
}

pub fn chat_body(content: &str, max_tokens: u64) -> Value {
    serde_json::json!({
        "model": NAME,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
    })
}
