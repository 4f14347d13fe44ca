//! The official `openai` Python client does chat, completions, streaming, logprobs, n/seed
//! and error handling against the server (tests/openai_client.py). The interpreter is
//! `$MARLIN_OPENAI_PYTHON` (.ci/run makes a venv with the pinned client), else `python3`
//! when it can import `openai`.

mod common;

use std::path::PathBuf;
use std::process::Command;

const INSTALL: &str =
    "python3 -m venv target/ci-venv && target/ci-venv/bin/pip install openai==3.57.0 \
     && export MARLIN_OPENAI_PYTHON=$PWD/target/ci-venv/bin/python (as .ci/run does)";

fn python() -> String {
    if let Ok(p) = std::env::var("MARLIN_OPENAI_PYTHON") {
        return p;
    }
    let ok = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "neither $MARLIN_OPENAI_PYTHON nor a python3 that imports `openai`; install it: {INSTALL}"
    );
    "python3".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_client() {
    let py = python();
    let mut opts = common::options();
    opts.api_key = Some("test-key".into());
    let s = common::start(common::engine_config(), opts).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(script)
            .env("MARLIN_URL", url)
            .env("MARLIN_MODEL", common::NAME)
            .env("MARLIN_KEY", "test-key")
            .output()
            .unwrap_or_else(|e| panic!("running {py}: {e}; install the client: {INSTALL}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "openai client failed:\n{stdout}\n{stderr}"
    );
    s.wait_idle().await;
    assert_eq!(s.engine.stats().kv_blocks_used, 0);
    s.stop().await;
}
