//! Killing the quantizer mid-write leaves no partial checkpoint: a child process runs a real
//! quantization of the tiny llama and is SIGKILLed half way through writing tensors; the
//! output folder must not exist. Quantizing onto an existing checkpoint is refused and leaves
//! it byte-for-byte intact.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use marlin_core::QuantFormat;
use marlin_quant::plan::{Method, PlanOptions};
use marlin_quant::quantize::{quantize, QuantizeJob};

fn job<'a>(src: &'a marlin_models::Model, out: &'a Path) -> QuantizeJob<'a> {
    QuantizeJob {
        model: src,
        source: Path::new("tiny-llama"),
        out,
        plan: PlanOptions {
            format: QuantFormat::from_name("int4_g32").unwrap(),
            method: Method::Rtn,
            hadamard: 0,
            preset: None,
            overrides: vec![],
        },
        calibration: None,
    }
}

/// Child half (only runs with the env var): quantize, and after half the tensors announce
/// it with a marker file and stall until killed.
#[test]
fn child_quantizes_until_killed() {
    let Ok(out) = std::env::var("MARLIN_QUANT_KILL_OUT") else {
        return;
    };
    let src = load(&tiny("llama"));
    let out = Path::new(&out);
    let marker = out.with_extension("halfway");
    quantize(job(&src, out), &mut |done, total, _| {
        if done == total / 2 {
            std::fs::write(&marker, b"1").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
    })
    .unwrap();
}

#[test]
fn a_quantizer_killed_mid_write_leaves_no_checkpoint() {
    let dir = scratch("kill");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("ck");
    let marker = out.with_extension("halfway");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_quantizes_until_killed", "--nocapture"])
        .env("MARLIN_QUANT_KILL_OUT", &out)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "child never got half way"
        );
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Half the tensors are in the temporary folder now.
    let partial = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(".ck.partial-"));
    assert!(partial, "no temporary folder while writing");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        !out.exists(),
        "a partial checkpoint was left at {}",
        out.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quantizing_onto_an_existing_checkpoint_leaves_it_intact() {
    let src = load(&tiny("llama"));
    let dir = scratch("exists");
    let out = dir.join("ck");
    quantize(job(&src, &out), &mut |_, _, _| {}).unwrap();
    let files = |p: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|f| (f.display().to_string(), std::fs::read(&f).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = files(&out);
    let e = quantize(job(&src, &out), &mut |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(files(&out), before);
    let _ = std::fs::remove_dir_all(&dir);
}
