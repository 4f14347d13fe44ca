//! Load over a real socket: 64 concurrent streaming clients get exactly the text of a
//! one-at-a-time greedy run; random mid-stream disconnects leave every KV block free; shared
//! prompts hit the prefix cache and change no output.

mod common;

use std::time::{Duration, Instant};

use common::{chat_body, parse_sse, start, stream_text, TestServer};
use futures_util::StreamExt;
use serde_json::{json, Value};

const QUESTIONS: [&str; 8] = [
    "What is 2+2?",
    "Name a color.",
    "Say hello.",
    "What is the capital of Italy?",
    "Count to three.",
    "Name an animal.",
    "What day comes after Monday?",
    "Spell cat.",
];

async fn whole_text(s: &TestServer, body: &Value) -> String {
    let (st, v) = s.post("/v1/chat/completions", body).await;
    assert_eq!(st, 200, "{v}");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_streams_match_sequential_greedy() {
    let s = start(common::engine_config(), common::options()).await;
    let bodies: Vec<Value> = QUESTIONS.iter().map(|q| chat_body(q, 6)).collect();
    let mut want = Vec::new();
    for b in &bodies {
        want.push(whole_text(&s, b).await);
    }
    let mut tasks = Vec::new();
    for i in 0..64 {
        let mut b = bodies[i % bodies.len()].clone();
        b["stream"] = json!(true);
        let (client, url) = (s.client.clone(), s.url.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{url}/v1/chat/completions"))
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            parse_sse(&r.text().await.unwrap())
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let ev = t.await.unwrap();
        assert_eq!(ev.last().unwrap(), "[DONE]", "client {i}");
        let (text, fin) = stream_text(&ev, 0);
        assert_eq!(fin.len(), 1, "client {i}: one finish_reason");
        assert_eq!(text, want[i % want.len()], "client {i}");
    }
    s.wait_idle().await;
    assert_eq!(s.metric("marlin_kv_blocks_used").await, 0.0);
    assert!(s.metric("marlin_engine_steps_total").await > 0.0);
    s.stop().await;
}

/// xorshift64*: the test's own reproducible randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_disconnects_free_every_block() {
    let n: u64 = std::env::var("MARLIN_CHAOS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let s = start(common::engine_config(), common::options()).await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tasks = Vec::new();
    for i in 0..n {
        // Where to hang up: 0 = before the response, k = after k chunks.
        let cut = rng.below(6);
        let stream = rng.below(4) != 0;
        let mut b = chat_body(QUESTIONS[(i % 8) as usize], 2000);
        b["ignore_eos"] = json!(true);
        b["stream"] = json!(stream);
        let (client, url) = (s.client.clone(), s.url.clone());
        let wait_ms = rng.below(30);
        tasks.push(tokio::spawn(async move {
            let send = client
                .post(format!("{url}/v1/chat/completions"))
                .json(&b)
                .send();
            if cut == 0 || !stream {
                // Give up while queued, in prefill or mid-generation.
                let _ = tokio::time::timeout(Duration::from_millis(wait_ms), send).await;
                return;
            }
            let r = send.await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let mut body = r.bytes_stream();
            for _ in 0..cut {
                if body.next().await.is_none() {
                    break;
                }
            }
        }));
        if tasks.len() >= 16 {
            for t in tasks.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.wait_idle().await;
    assert_eq!(s.metric("marlin_kv_blocks_used").await, 0.0);
    assert_eq!(s.metric("marlin_requests_running").await, 0.0);
    assert_eq!(s.metric("marlin_requests_waiting").await, 0.0);
    assert!(s.metric("marlin_requests_cancelled_total").await > 0.0);
    // A fresh request is served promptly.
    let t = Instant::now();
    let text = whole_text(&s, &chat_body("Say hello.", 4)).await;
    assert!(!text.is_empty());
    assert!(t.elapsed() < Duration::from_secs(5));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_prompts_hit_the_prefix_cache_with_identical_output() {
    let system = "You are a concise assistant. You answer every question in at most one short \
                  sentence, without any preamble, and you never apologise or repeat the question.";
    let body = |q: &str| {
        let mut b = chat_body(q, 6);
        b["messages"] =
            json!([{"role": "system", "content": system}, {"role": "user", "content": q}]);
        b
    };
    let mut uncached_cfg = common::engine_config();
    uncached_cfg.prefix_caching = false;
    let plain = start(uncached_cfg, common::options()).await;
    let mut want = Vec::new();
    for q in &QUESTIONS[..4] {
        want.push(whole_text(&plain, &body(q)).await);
    }
    assert_eq!(plain.metric("marlin_prefix_cache_hits_total").await, 0.0);
    plain.stop().await;

    let s = start(common::engine_config(), common::options()).await;
    for round in 0..2 {
        for (q, w) in QUESTIONS[..4].iter().zip(&want) {
            let (st, v) = s.post("/v1/chat/completions", &body(q)).await;
            assert_eq!(st, 200);
            assert_eq!(
                v["choices"][0]["message"]["content"].as_str().unwrap(),
                w,
                "round {round}"
            );
            let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap();
            if round == 1 {
                assert!(cached >= 32, "cached {cached}");
            }
        }
    }
    assert!(s.metric("marlin_prefix_cache_hits_total").await >= 8.0);
    assert!(s.metric("marlin_prefix_cache_hit_rate").await > 0.3);
    s.wait_idle().await;
    assert_eq!(s.metric("marlin_kv_blocks_used").await, 0.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_kv_pool_preempts_and_still_answers_everything() {
    // 10 blocks (160 tokens) against 12 requests of ~65 tokens each: 5x the pool.
    let mut cfg = common::engine_config();
    cfg.num_blocks = 10;
    let s = start(cfg, common::options()).await;
    // Every sequence grows by 30 tokens (2 blocks) after admission: growth must preempt.
    let bodies: Vec<Value> = QUESTIONS
        .iter()
        .map(|q| {
            let mut b = chat_body(q, 30);
            b["ignore_eos"] = json!(true);
            b
        })
        .collect();
    let mut want = Vec::new();
    for b in &bodies {
        want.push(whole_text(&s, b).await);
    }
    let mut tasks = Vec::new();
    for i in 0..12 {
        let b = bodies[i % bodies.len()].clone();
        let (client, url) = (s.client.clone(), s.url.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{url}/v1/chat/completions"))
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let v: Value = r.json().await.unwrap();
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), want[i % want.len()], "request {i}");
    }
    assert!(s.metric("marlin_preemptions_total").await > 0.0);
    s.wait_idle().await;
    assert_eq!(s.metric("marlin_kv_blocks_used").await, 0.0);
    s.stop().await;
}
