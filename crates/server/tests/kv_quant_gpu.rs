//! `--device gpu --kv-cache-dtype fp8` over a real socket: a server whose engine runs
//! SmolLM2-135M on the GPU (lavapipe in CI) with an FP8 E4M3 KV cache serves completions
//! whole, streamed (same text) and with n = 2 (forked sequences: GPU copy-on-write of the
//! shared quantized prompt block gives both choices the same greedy text), frees every KV
//! block, and continues a counting prompt like the F16-cache server on the same GPU model.
//! (A chat prompt would not do: "What is the capital of France?" opens with a near-tie,
//! "L" vs "The" within 0.04–0.45 logits, that the KV dtype flips on both devices.)

mod common;

use std::sync::Arc;

use common::{parse_sse, stream_text, NAME};
use marlin_engine::serve::{EngineConfig, EngineHandle};
use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::kv_cache::KvDtype;
use marlin_models::{Device, GpuModel};
use marlin_server::AppState;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// POSTs `body` to `url`: (status, text).
async fn post(c: &reqwest::Client, url: &str, body: &Value) -> (u16, String) {
    let r = c.post(url).json(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Serves `device` with a `kv_dtype` cache on a free loopback port and returns the greedy
/// completion after checking streaming, n = 2 and block accounting.
async fn answer(device: Device, kv_dtype: KvDtype) -> String {
    let cfg = EngineConfig {
        num_blocks: 32,
        kv_dtype,
        ..common::engine_config()
    };
    let engine = EngineHandle::start(common::model(), device, cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(AppState::new(engine.clone(), common::options()));
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(marlin_server::serve(listener, state, async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    let url = format!("{base}/v1/completions");
    let body =
        json!({"model": NAME, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 4, "temperature": 0});
    let (st, text) = post(&c, &url, &body).await;
    assert_eq!(st, 200, "{kv_dtype:?}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let whole = v["choices"][0]["text"].as_str().unwrap().to_string();
    assert!(!whole.is_empty(), "{kv_dtype:?}");

    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let (st, text) = post(&c, &url, &sb).await;
    assert_eq!(st, 200, "{kv_dtype:?}: {text}");
    assert_eq!(
        stream_text(&parse_sse(&text), 0).0,
        whole,
        "{kv_dtype:?}: stream"
    );

    let mut nb = body.clone();
    nb["n"] = json!(2);
    let (st, text) = post(&c, &url, &nb).await;
    assert_eq!(st, 200, "{kv_dtype:?}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    for i in 0..2 {
        let t = v["choices"][i]["text"].as_str().unwrap();
        assert_eq!(t, whole, "{kv_dtype:?}: n = 2, choice {i}");
    }

    let t = std::time::Instant::now();
    while engine.stats().requests_in_flight > 0 || engine.stats().seqs_running > 0 {
        assert!(t.elapsed().as_secs() < 60, "never idle");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let metrics = c.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let used = metrics.lines().find_map(|l| {
        l.strip_prefix("marlin_kv_blocks_used ")?
            .parse::<f64>()
            .ok()
    });
    assert_eq!(used, Some(0.0), "{kv_dtype:?}: blocks freed");
    let _ = tx.send(());
    join.await.unwrap().unwrap();
    whole
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_fp8_kv_serves_completions_over_a_socket() {
    let ctx = match GpuContext::new(DeviceSelector::Gpu) {
        Ok(Some(c)) => Arc::new(c),
        _ if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => return,
        Ok(None) => panic!("DeviceSelector::Gpu opened no adapter"),
        Err(e) => panic!("no wgpu adapter ({e}): install lavapipe or set MARLIN_SKIP_GPU=1"),
    };
    let gpu = Arc::new(GpuModel::new(ctx, &common::model()).unwrap());
    let f16 = answer(Device::Gpu(gpu.clone()), KvDtype::F16).await;
    let fp8 = answer(Device::Gpu(gpu), KvDtype::Fp8E4M3).await;
    eprintln!("fp8: {fp8:?} (f16: {f16:?})");
    // The first word must agree; late tokens may flip on near-ties.
    let first = |s: &str| s.split_whitespace().next().map(str::to_string);
    assert_eq!(first(&fp8), first(&f16), "{fp8:?} vs f16 {f16:?}");
}
