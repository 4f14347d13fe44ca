//! `bench serve`: a closed-loop load generator for an OpenAI-compatible server. `concurrency`
//! clients each send streaming chat requests back to back until `requests` were sent, and
//! the report gives throughput, time to first token and time per output token percentiles,
//! and errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// What to send.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Base URL, e.g. `http://127.0.0.1:8000`.
    pub url: String,
    pub concurrency: usize,
    pub requests: usize,
    /// Tokens per completion.
    pub max_tokens: usize,
    /// The user message.
    pub prompt: String,
    /// `model` field (the server's served name; `None`: omitted).
    pub model: Option<String>,
    pub api_key: Option<String>,
}

/// One request's outcome.
#[derive(Debug, Clone, Default)]
struct Sample {
    ttft: Option<f64>,
    tpot: Option<f64>,
    tokens: usize,
    error: Option<String>,
}

/// Runs the load and returns the JSON report.
pub fn run(cfg: &BenchConfig) -> Result<Value> {
    if cfg.concurrency == 0 || cfg.requests == 0 {
        return Err(Error::Config(
            "concurrency and requests must be at least 1".into(),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: &BenchConfig) -> Result<Value> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cfg.concurrency {
        let (client, next, cfg) = (client.clone(), next.clone(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < cfg.requests {
                out.push(one(&client, &cfg).await);
            }
            out
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap_or_default());
    }
    Ok(report(cfg, &samples, start.elapsed()))
}

async fn one(client: &reqwest::Client, cfg: &BenchConfig) -> Sample {
    match stream_one(client, cfg).await {
        Ok(s) => s,
        Err(e) => Sample {
            error: Some(e),
            ..Sample::default()
        },
    }
}

async fn stream_one(
    client: &reqwest::Client,
    cfg: &BenchConfig,
) -> std::result::Result<Sample, String> {
    let mut body = json!({
        "messages": [{"role": "user", "content": cfg.prompt}],
        "max_tokens": cfg.max_tokens,
        "temperature": 0,
        "ignore_eos": true,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(m) = &cfg.model {
        body["model"] = json!(m);
    }
    let url = format!("{}/v1/chat/completions", cfg.url.trim_end_matches('/'));
    let mut req = client.post(url).json(&body);
    if let Some(k) = &cfg.api_key {
        req = req.bearer_auth(k);
    }
    let t0 = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let (mut first, mut last, mut tokens) = (None, t0, 0usize);
    let mut done = false;
    let mut usage_tokens = None;
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..pos + 2).collect();
            let line = String::from_utf8_lossy(&frame);
            let data = line.trim().strip_prefix("data: ").unwrap_or("");
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
            if let Some(err) = v.get("error") {
                return Err(err.to_string());
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                usage_tokens = Some(n as usize);
            }
            let content = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
            if !content.is_empty() {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                tokens += 1;
            }
        }
    }
    if !done {
        return Err("the stream ended without [DONE]".into());
    }
    // Content chunks can merge tokens (held-back text); usage has the true count.
    let tokens = usage_tokens.unwrap_or(tokens);
    let ttft = first.map(|f| (f - t0).as_secs_f64());
    let tpot = match first {
        Some(f) if tokens > 1 => Some((last - f).as_secs_f64() / (tokens - 1) as f64),
        _ => None,
    };
    Ok(Sample {
        ttft,
        tpot,
        tokens,
        error: None,
    })
}

/// The `q` quantile (0..1) of sorted `v` (nearest rank).
fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn dist(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    json!({
        "p50_ms": pct(&v, 0.5) * 1e3,
        "p90_ms": pct(&v, 0.9) * 1e3,
        "p99_ms": pct(&v, 0.99) * 1e3,
    })
}

fn report(cfg: &BenchConfig, s: &[Sample], wall: Duration) -> Value {
    let ok: Vec<&Sample> = s.iter().filter(|x| x.error.is_none()).collect();
    let tokens: usize = ok.iter().map(|x| x.tokens).sum();
    let mut errors: Vec<String> = s.iter().filter_map(|x| x.error.clone()).collect();
    let n_err = errors.len();
    errors.sort();
    errors.dedup();
    errors.truncate(5);
    let secs = wall.as_secs_f64().max(1e-9);
    json!({
        "url": cfg.url,
        "concurrency": cfg.concurrency,
        "requests": s.len(),
        "completed": ok.len(),
        "errors": n_err,
        "error_samples": errors,
        "wall_s": secs,
        "requests_per_s": ok.len() as f64 / secs,
        "output_tok_s": tokens as f64 / secs,
        "output_tokens": tokens,
        "ttft": dist(ok.iter().filter_map(|x| x.ttft).collect()),
        "tpot": dist(ok.iter().filter_map(|x| x.tpot).collect()),
    })
}
