//! A server whose engine stores the KV cache as INT8 (and one as FP8 E4M3) serves chat,
//! whole and streamed, on SmolLM2-135M; the greedy answer starts like the F16 server's.

mod common;

use common::{chat_body, start, stream_text};
use marlin_engine::serve::EngineConfig;
use marlin_models::kv_cache::KvDtype;
use serde_json::json;

async fn answer(kv_dtype: KvDtype) -> String {
    let cfg = EngineConfig {
        num_blocks: 64,
        kv_dtype,
        ..common::engine_config()
    };
    let s = start(cfg, common::options()).await;
    let body = chat_body("What is the capital of France?", 8);
    let (st, v) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(st, 200, "{kv_dtype:?}: {v}");
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.is_empty(), "{kv_dtype:?}");
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let ev = s.stream("/v1/chat/completions", &sb).await;
    assert_eq!(stream_text(&ev, 0).0, text, "{kv_dtype:?}: stream = whole");
    s.wait_idle().await;
    assert_eq!(s.metric("marlin_kv_blocks_used").await, 0.0, "{kv_dtype:?}");
    s.stop().await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantized_kv_serves_chat() {
    let f16 = answer(KvDtype::F16).await;
    for dtype in [KvDtype::Int8, KvDtype::Fp8E4M3] {
        let q = answer(dtype).await;
        eprintln!("{dtype:?}: {q:?} (f16: {f16:?})");
        // The first words must agree; late tokens may flip on near-ties.
        let (a, b): (Vec<&str>, Vec<&str>) = (
            f16.split_whitespace().collect(),
            q.split_whitespace().collect(),
        );
        assert_eq!(a.first(), b.first(), "{dtype:?}: {q:?} vs f16 {f16:?}");
    }
}
