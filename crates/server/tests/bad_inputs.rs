//! reliability.md §1b over a real socket: every bad input gets the right status and an
//! OpenAI-shaped error body (string `code`, `param` naming the field, at most 4 KiB), and the
//! server keeps serving good requests afterwards. Also 429 when the queue is full and 503
//! while draining.

mod common;

use common::{chat_body, start, NAME};
use serde_json::{json, Value};

/// (route, raw body, content type, status, code, param)
type Case = (
    &'static str,
    String,
    &'static str,
    u16,
    Option<&'static str>,
    Option<&'static str>,
);

const CHAT: &str = "/v1/chat/completions";
const CMPL: &str = "/v1/completions";
const JSON: &str = "application/json";

fn chat_with(field: &str, v: Value) -> String {
    let mut b = chat_body("hi", 4);
    b[field] = v;
    b.to_string()
}

fn cmpl_with(field: &str, v: Value) -> String {
    let mut b = json!({"model": NAME, "prompt": "hi", "max_tokens": 4});
    b[field] = v;
    b.to_string()
}

fn cases() -> Vec<Case> {
    let iv = Some("invalid_value");
    let bad = |route, body: String, param| (route, body, JSON, 400, iv, Some(param));
    let mut c: Vec<Case> = vec![
        // H1: bad JSON, wrong content type, not an object.
        (CHAT, "{\"messages\": [".into(), JSON, 400, None, None),
        (
            CHAT,
            chat_body("hi", 4).to_string(),
            "text/plain",
            400,
            None,
            None,
        ),
        (CHAT, "[1, 2]".into(), JSON, 400, None, None),
        (
            CHAT,
            "{\"temperature\": 1e400}".into(),
            JSON,
            400,
            None,
            None,
        ),
        // H3: messages.
        bad(CHAT, json!({"model": NAME}).to_string(), "messages"),
        bad(CHAT, chat_with("messages", json!([])), "messages"),
        bad(CHAT, chat_with("messages", json!("hi")), "messages"),
        bad(
            CHAT,
            chat_with("messages", json!([{"content": "hi"}])),
            "messages",
        ),
        bad(
            CHAT,
            chat_with("messages", json!([{"role": "wizard", "content": "hi"}])),
            "messages",
        ),
        bad(
            CHAT,
            chat_with("messages", json!([{"role": "user", "content": 5}])),
            "messages",
        ),
        bad(
            CHAT,
            chat_with(
                "messages",
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
            ),
            "messages",
        ),
        bad(CHAT, chat_with("messages", json!([7])), "messages"),
        // H4: model.
        (
            CHAT,
            chat_with("model", json!("gpt-17")),
            JSON,
            404,
            Some("model_not_found"),
            Some("model"),
        ),
        (
            CMPL,
            cmpl_with("model", json!("gpt-17")),
            JSON,
            404,
            Some("model_not_found"),
            Some("model"),
        ),
        bad(CHAT, chat_with("model", json!(5)), "model"),
        // H5: max_tokens.
        (
            CHAT,
            chat_with("max_tokens", json!(1_000_000_000)),
            JSON,
            400,
            Some("context_length_exceeded"),
            Some("max_tokens"),
        ),
        (
            CMPL,
            cmpl_with("max_tokens", json!(9000)),
            JSON,
            400,
            Some("context_length_exceeded"),
            Some("max_tokens"),
        ),
        // H6: the prompt alone is longer than the context.
        (
            CHAT,
            chat_body(&"hello ".repeat(9000), 4).to_string(),
            JSON,
            400,
            Some("context_length_exceeded"),
            Some("messages"),
        ),
        (
            CMPL,
            cmpl_with("prompt", json!("hello ".repeat(9000))),
            JSON,
            400,
            Some("context_length_exceeded"),
            Some("prompt"),
        ),
        // H12: body over the limit.
        (
            CHAT,
            chat_body(&"x".repeat(5 << 20), 4).to_string(),
            JSON,
            413,
            Some("request_too_large"),
            None,
        ),
        // H10: stop.
        bad(
            CHAT,
            chat_with("stop", json!(["a", "b", "c", "d", "e"])),
            "stop",
        ),
        bad(CHAT, chat_with("stop", json!("")), "stop"),
        bad(CHAT, chat_with("stop", json!("x".repeat(300))), "stop"),
        bad(CHAT, chat_with("stop", json!(5)), "stop"),
        bad(CHAT, chat_with("stop", json!([5])), "stop"),
        // H9: n, best_of.
        bad(CHAT, chat_with("n", json!(0)), "n"),
        bad(CHAT, chat_with("n", json!(1000)), "n"),
        bad(CHAT, chat_with("n", json!(1.5)), "n"),
        (
            CMPL,
            cmpl_with("best_of", json!(3)),
            JSON,
            400,
            Some("unsupported_parameter"),
            Some("best_of"),
        ),
        // H11: prompt token ids.
        bad(CMPL, cmpl_with("prompt", json!([1, 99_999_999])), "prompt"),
        bad(CMPL, cmpl_with("prompt", json!([1, -3])), "prompt"),
        bad(CMPL, cmpl_with("prompt", json!(["a", "b"])), "prompt"),
        bad(CMPL, cmpl_with("prompt", json!([])), "prompt"),
        bad(CMPL, cmpl_with("prompt", json!("")), "prompt"),
        bad(CMPL, cmpl_with("prompt", json!(5)), "prompt"),
        bad(CMPL, json!({"model": NAME}).to_string(), "prompt"),
        bad(CMPL, cmpl_with("logprobs", json!(21)), "logprobs"),
        bad(CMPL, cmpl_with("logprobs", json!(true)), "logprobs"),
        (
            CMPL,
            cmpl_with("echo", json!(true)),
            JSON,
            400,
            Some("unsupported_parameter"),
            Some("echo"),
        ),
        (
            CMPL,
            cmpl_with("suffix", json!("end")),
            JSON,
            400,
            Some("unsupported_parameter"),
            Some("suffix"),
        ),
        // H8: logprobs, logit_bias, structured output, tools.
        bad(CHAT, chat_with("logprobs", json!("yes")), "logprobs"),
        bad(CHAT, chat_with("top_logprobs", json!(3)), "top_logprobs"),
        (
            CHAT,
            chat_with("logit_bias", json!({"15": 10})),
            JSON,
            400,
            Some("unsupported_parameter"),
            Some("logit_bias"),
        ),
        bad(CHAT, chat_with("logit_bias", json!("x")), "logit_bias"),
        (
            CHAT,
            chat_with("response_format", json!({"type": "json_object"})),
            JSON,
            400,
            Some("unsupported_parameter"),
            Some("response_format"),
        ),
        (
            CHAT,
            chat_with("tools", json!([{"type": "function"}])),
            JSON,
            400,
            Some("unsupported_parameter"),
            Some("tools"),
        ),
        bad(CHAT, chat_with("stream", json!("yes")), "stream"),
        bad(
            CHAT,
            chat_with("stream_options", json!("x")),
            "stream_options",
        ),
        bad(
            CHAT,
            chat_with("stream_options", json!({"include_usage": 1})),
            "stream_options",
        ),
        bad(CHAT, chat_with("seed", json!("abc")), "seed"),
        bad(CHAT, chat_with("seed", json!(1.5)), "seed"),
        bad(CHAT, chat_with("top_k", json!(-5)), "top_k"),
        bad(
            CHAT,
            chat_with("max_completion_tokens", json!(0)),
            "max_completion_tokens",
        ),
        bad(CHAT, chat_with("ignore_eos", json!("no")), "ignore_eos"),
        bad("/v1/perplexity", json!({"text": 5}).to_string(), "text"),
        bad("/v1/perplexity", json!({"text": "a"}).to_string(), "text"),
        bad("/v1/perplexity", json!({}).to_string(), "prompt"),
    ];
    // H2 / H7 / H8: each numeric field with a wrong type, out of range and an overflow.
    for (field, lo, hi) in [
        ("temperature", -0.5, 2.5),
        ("top_p", -0.1, 1.5),
        ("min_p", -0.1, 1.5),
        ("presence_penalty", -2.5, 2.5),
        ("frequency_penalty", -3.0, 3.0),
        ("repetition_penalty", 0.0, 11.0),
        ("max_tokens", 0.0, -5.0),
    ] {
        for v in [
            json!(lo),
            json!(hi),
            json!("hot"),
            json!([1]),
            json!(true),
            json!(1.5e300),
        ] {
            if field == "max_tokens" && v == json!(1.5e300) {
                continue;
            }
            if field != "max_tokens" && v == json!(1.5e300) {
                c.push(bad(CHAT, chat_with(field, v), field));
                continue;
            }
            c.push(bad(CHAT, chat_with(field, v.clone()), field));
            c.push(bad(CMPL, cmpl_with(field, v), field));
        }
    }
    c.push(bad(CHAT, chat_with("max_tokens", json!(1.5)), "max_tokens"));
    c
}

/// Sends only the headers of a POST declaring `len` body bytes and reads the answer: the
/// server must refuse the body without reading it.
async fn headers_only(url: &str, route: &str, len: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {route} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut opts = common::options();
    opts.body_timeout = std::time::Duration::from_millis(500);
    let s = start(common::engine_config(), opts).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{{\"mess"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let t = std::time::Instant::now();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(s.get("/health").await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut opts = common::options();
    opts.header_timeout = std::time::Duration::from_millis(500);
    let s = start(common::engine_config(), opts).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), c.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    // The cut connection is gone (only /metrics' own stays open); its task may lag a moment.
    let t = std::time::Instant::now();
    while s.metric("marlin_connections_open").await != 1.0 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "connection not closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(s.get("/health").await.0, 200);
    s.stop().await;
}

fn check_error_shape(
    status: u16,
    text: &str,
    want_code: Option<&str>,
    want_param: Option<&str>,
    what: &str,
) {
    assert!(
        text.len() <= 4096,
        "{what}: error body of {} bytes",
        text.len()
    );
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    let e = v["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {text}"));
    assert_eq!(e.len(), 4, "{what}: {text}");
    assert!(
        e["message"].is_string() && e["type"].is_string(),
        "{what}: {text}"
    );
    assert!(e["param"].is_string() || e["param"].is_null());
    assert!(e["code"].is_string() || e["code"].is_null());
    if let Some(c) = want_code {
        assert_eq!(e["code"], c, "{what} ({status}): {text}");
    }
    if let Some(p) = want_param {
        assert_eq!(e["param"], p, "{what}: {text}");
    }
    let kind = e["type"].as_str().unwrap();
    let want_kind = match status {
        400 | 405 | 413 => "invalid_request_error",
        401 => "authentication_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "server_error",
    };
    assert_eq!(kind, want_kind, "{what}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_an_openai_error() {
    let s = start(common::engine_config(), common::options()).await;
    let all = cases();
    assert!(all.len() >= 60, "{} cases", all.len());
    for (route, body, ct, status, code, param) in &all {
        let what = format!("{route} {}", &body[..body.len().min(120)]);
        if *status == 413 {
            let (st, text) = headers_only(&s.url, route, body.len()).await;
            assert_eq!(st, 413, "{what}");
            check_error_shape(st, &text, *code, *param, &what);
            continue;
        }
        let r = s
            .client
            .post(format!("{}{route}", s.url))
            .header("content-type", *ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{what}");
        let text = r.text().await.unwrap();
        check_error_shape(*status, &text, *code, *param, &what);
    }
    // Routes and methods.
    let (st, text) = s.get("/v1/nothing").await;
    assert_eq!(st, 404);
    check_error_shape(404, &text, Some("not_found"), None, "unknown route");
    let (st, text) = s.get(CHAT).await;
    assert_eq!(st, 405);
    check_error_shape(
        405,
        &text,
        Some("method_not_allowed"),
        None,
        "GET on POST route",
    );
    // The server is unharmed.
    assert_eq!(s.get("/health").await.0, 200);
    let (st, v) = s.post(CHAT, &chat_body("hi", 3)).await;
    assert_eq!(st, 200, "{v}");
    s.wait_idle().await;
    assert_eq!(s.engine.stats().kv_blocks_used, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_gets_429_and_draining_503() {
    let mut cfg = common::engine_config();
    cfg.max_requests = 2;
    let s = start(cfg, common::options()).await;
    let mut long = chat_body("Tell me a story.", 400);
    long["ignore_eos"] = json!(true);
    long["stream"] = json!(true);
    let mut open = Vec::new();
    for _ in 0..2 {
        let r = s
            .client
            .post(format!("{}{CHAT}", s.url))
            .json(&long)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        open.push(r);
    }
    let r = s
        .client
        .post(format!("{}{CHAT}", s.url))
        .json(&chat_body("hi", 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    check_error_shape(
        429,
        &r.text().await.unwrap(),
        Some("overloaded"),
        None,
        "429",
    );
    drop(open);
    s.wait_idle().await;
    assert_eq!(s.engine.stats().kv_blocks_used, 0);
    let (st, _) = s.post(CHAT, &chat_body("hi", 2)).await;
    assert_eq!(st, 200);
    s.engine.shutdown();
    let (st, v) = s.post(CHAT, &chat_body("hi", 2)).await;
    assert_eq!(st, 503);
    check_error_shape(503, &v.to_string(), Some("unavailable"), None, "503");
    assert_eq!(s.get("/health").await.0, 503);
    s.stop().await;
}
