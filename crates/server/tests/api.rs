//! The OpenAI routes over a real loopback socket on SmolLM2-135M: shapes of chat and text
//! completions (whole and streamed), usage, logprobs, stop, seed, n, perplexity, health,
//! metrics, the API key and graceful shutdown.

mod common;

use common::{chat_body, start, stream_text, NAME};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_and_metrics() {
    let s = start(common::engine_config(), common::options()).await;
    let (st, body) = s.get("/v1/models").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], NAME);
    assert_eq!(s.get(&format!("/v1/models/{NAME}")).await.0, 200);
    assert_eq!(s.get("/health").await.0, 200);
    let (st, text) = s.get("/metrics").await;
    assert_eq!(st, 200);
    for m in [
        "marlin_kv_blocks_total 512",
        "marlin_kv_blocks_used 0",
        "marlin_requests_waiting 0",
        "marlin_requests_running 0",
        "marlin_prefix_cache_hit_rate",
        "marlin_time_to_first_token_seconds_bucket",
        "marlin_time_per_output_token_seconds_count",
    ] {
        assert!(text.contains(m), "missing {m} in\n{text}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_whole_and_streamed_agree() {
    let s = start(common::engine_config(), common::options()).await;
    let body = chat_body("What is the capital of France?", 12);
    let (st, v) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], NAME);
    let c = &v["choices"][0];
    assert_eq!(c["message"]["role"], "assistant");
    let text = c["message"]["content"].as_str().unwrap().to_string();
    assert!(!text.is_empty());
    let u = &v["usage"];
    let (p, ct) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 5 && (1..=12).contains(&ct));
    assert_eq!(u["total_tokens"].as_u64().unwrap(), p + ct);

    let mut sb = body.clone();
    sb["stream"] = json!(true);
    sb["stream_options"] = json!({"include_usage": true});
    let ev = s.stream("/v1/chat/completions", &sb).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert_eq!(ev[0]["object"], "chat.completion.chunk");
    assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
    let (streamed, fin) = stream_text(&ev, 0);
    assert_eq!(streamed, text);
    assert_eq!(fin, vec![c["finish_reason"].as_str().unwrap().to_string()]);
    let usage = &ev[ev.len() - 2];
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["completion_tokens"].as_u64().unwrap(), ct);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_logprobs_stop_seed_and_n() {
    let s = start(common::engine_config(), common::options()).await;
    let body = json!({"model": NAME, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 8, "temperature": 0, "logprobs": 3});
    let (st, v) = s.post("/v1/completions", &body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    let c = &v["choices"][0];
    let text = c["text"].as_str().unwrap();
    assert!(text.starts_with(" 6"), "{text:?}");
    let lp = &c["logprobs"];
    let n = v["usage"]["completion_tokens"].as_u64().unwrap() as usize;
    assert_eq!(lp["tokens"].as_array().unwrap().len(), n);
    assert_eq!(lp["top_logprobs"][0].as_object().unwrap().len(), 3);
    let first = lp["token_logprobs"][0].as_f64().unwrap();
    assert!(first <= 0.0 && first > -5.0, "{first}");
    // Greedy: the sampled token is the most likely one.
    let best = lp["top_logprobs"][0]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert!((best - first).abs() < 1e-5);

    // Stop string: the text is cut before it.
    let mut sb = body.clone();
    sb["stop"] = json!([" 8"]);
    sb["logprobs"] = serde_json::Value::Null;
    let (_, v) = s.post("/v1/completions", &sb).await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["text"], " 6, 7,");

    // Chat logprobs shape.
    let mut cb = chat_body("Hi", 3);
    cb["logprobs"] = json!(true);
    cb["top_logprobs"] = json!(2);
    let (_, v) = s.post("/v1/chat/completions", &cb).await;
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert!(!content.is_empty());
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert!(content[0]["bytes"].is_array());

    // Seeded sampling is reproducible; n choices are indexed.
    let seeded = json!({"model": NAME, "prompt": "Once upon a time", "max_tokens": 10, "temperature": 1.2, "seed": 42, "n": 3, "ignore_eos": true});
    let (_, a) = s.post("/v1/completions", &seeded).await;
    let (_, b) = s.post("/v1/completions", &seeded).await;
    assert_eq!(a["choices"], b["choices"]);
    let ch = a["choices"].as_array().unwrap();
    assert_eq!(ch.len(), 3);
    assert_eq!(ch[2]["index"], 2);
    assert_eq!(a["usage"]["completion_tokens"], 30);
    let mut streamed = seeded.clone();
    streamed["stream"] = json!(true);
    let ev = s.stream("/v1/completions", &streamed).await;
    for i in 0..3 {
        assert_eq!(
            stream_text(&ev, i).0,
            ch[i as usize]["text"].as_str().unwrap()
        );
    }
    s.wait_idle().await;
    assert_eq!(s.engine.stats().kv_blocks_used, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perplexity_route() {
    let s = start(common::engine_config(), common::options()).await;
    let text =
        "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.";
    let (st, v) = s
        .post("/v1/perplexity", &json!({"model": NAME, "text": text}))
        .await;
    assert_eq!(st, 200, "{v}");
    let ppl = v["perplexity"].as_f64().unwrap();
    let n = v["tokens"].as_u64().unwrap() as usize;
    assert_eq!(v["token_logprobs"].as_array().unwrap().len(), n);
    assert!(ppl > 1.0 && ppl < 200.0, "{ppl}");
    // The repeated half is far more predictable: the NLL of the second half is lower.
    let lps: Vec<f64> = v["token_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let half = lps.len() / 2;
    let mean = |s: &[f64]| -s.iter().sum::<f64>() / s.len() as f64;
    assert!(mean(&lps[half + 2..]) < mean(&lps[..half]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_guards_v1_routes() {
    let mut opts = common::options();
    opts.api_key = Some("sekrit".into());
    let s = start(common::engine_config(), opts).await;
    let url = |p: &str| format!("{}{p}", s.url);
    for (path, body) in [
        ("/v1/chat/completions", chat_body("hi", 2)),
        ("/v1/completions", json!({"prompt": "hi", "max_tokens": 2})),
        ("/v1/perplexity", json!({"text": "hello there"})),
    ] {
        for key in [None, Some("wrong")] {
            let mut r = s.client.post(url(path)).json(&body);
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 401, "{path} {key:?}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "invalid_api_key");
            assert_eq!(v["error"]["type"], "authentication_error");
        }
        let r = s
            .client
            .post(url(path))
            .bearer_auth("sekrit")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    assert_eq!(
        s.client
            .get(url("/v1/models"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(s.get("/health").await.0, 200);
    assert_eq!(s.get("/metrics").await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_open_streams() {
    let s = start(common::engine_config(), common::options()).await;
    let mut body = chat_body("Count from one to twenty.", 40);
    body["stream"] = json!(true);
    body["ignore_eos"] = json!(true);
    let resp = s
        .client
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let engine = s.engine.clone();
    let stopping = tokio::spawn(s.stop());
    // The open stream still runs to its end.
    let text = resp.text().await.unwrap();
    let ev = common::parse_sse(&text);
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert_eq!(stream_text(&ev, 0).1, vec!["length".to_string()]);
    stopping.await.unwrap();
    assert!(engine.is_draining());
    assert!(matches!(
        engine.submit(
            marlin_engine::serve::GenRequest {
                prompt: vec![1, 2],
                params: Default::default(),
                n: 1,
                logprobs: None
            },
            Box::new(|_: marlin_engine::serve::Event| true)
        ),
        Err(marlin_engine::Error::ShuttingDown)
    ));
}
