//! Request fuzzing (reliability.md T8, small): random mutations of valid chat and completion
//! bodies — fields dropped, retyped, out of range, nested, huge — never get a 5xx, every
//! error is OpenAI-shaped, and the server stays healthy with no KV block leaked.

mod common;

use common::{start, NAME};
use serde_json::{json, Value};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn junk(r: &mut Rng) -> Value {
    match r.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(1.5),
        5 => json!(1e300),
        6 => json!(i64::MAX),
        7 => json!(""),
        8 => json!("x".repeat(5000)),
        9 => json!([]),
        10 => json!([1, "a", null]),
        11 => json!({}),
        12 => json!({"a": {"b": [1]}}),
        _ => json!(-0.0),
    }
}

const FIELDS: [&str; 22] = [
    "model",
    "messages",
    "prompt",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "n",
    "stop",
    "seed",
    "stream",
    "stream_options",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "ignore_eos",
    "best_of",
    "user",
    "response_format",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_never_get_a_5xx() {
    let n: usize = std::env::var("MARLIN_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let s = start(common::engine_config(), common::options()).await;
    let mut r = Rng(0x0123_4567_89AB_CDEF);
    let (mut ok, mut errors) = (0, 0);
    for i in 0..n {
        let chat = i % 2 == 0;
        let mut b = if chat {
            json!({"model": NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0})
        } else {
            json!({"model": NAME, "prompt": "Hi", "max_tokens": 2, "temperature": 0})
        };
        for _ in 0..1 + r.below(3) {
            let f = FIELDS[r.below(FIELDS.len())];
            match r.below(4) {
                0 => {
                    b.as_object_mut().unwrap().remove(f);
                }
                1 if f == "messages" => b[f] = json!([{"role": "user", "content": junk(&mut r)}]),
                _ => b[f] = junk(&mut r),
            }
        }
        // Keep generations short: max_tokens is only ever made invalid, never large.
        if r.below(5) == 0 {
            b["max_tokens"] = junk(&mut r);
            if b["max_tokens"].as_u64().is_some_and(|m| m > 4) || b["max_tokens"].is_null() {
                b["max_tokens"] = json!(1);
            }
        }
        let route = if chat {
            "/v1/chat/completions"
        } else {
            "/v1/completions"
        };
        let resp = s
            .client
            .post(format!("{}{route}", s.url))
            .json(&b)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status < 500, "{status} for {b}: {text}");
        if status == 200 {
            ok += 1;
            continue;
        }
        errors += 1;
        assert!(text.len() <= 4096, "{} byte error", text.len());
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let e = v["error"].as_object().unwrap_or_else(|| panic!("{text}"));
        assert_eq!(e.len(), 4, "{text}");
        assert!(e["message"].is_string() && e["type"].is_string(), "{text}");
    }
    assert!(ok > 10 && errors > n / 4, "ok {ok} errors {errors}");
    s.wait_idle().await;
    assert_eq!(s.get("/health").await.0, 200);
    assert_eq!(s.metric("marlin_kv_blocks_used").await, 0.0);
    s.stop().await;
}
