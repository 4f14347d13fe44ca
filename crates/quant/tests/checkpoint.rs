//! Export and checkpoints on the tiny llama fixture: convert loads back bit-exactly, a
//! quantized checkpoint loads and runs, inconsistent metadata is refused, and an aborted
//! write leaves no folder.

use std::path::{Path, PathBuf};

use marlin_core::formats::f32_to_f16;
use marlin_core::{Group, QuantFormat};
use marlin_models::model::Model;
use marlin_quant::convert::{convert, FloatDtype};
use marlin_quant::export::entries;
use marlin_quant::plan::{Method, PlanOptions};
use marlin_quant::quantize::{quantize, QuantizeJob};
use marlin_quant::st_writer::{FolderWriter, PlannedTensor};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/llama")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("marlin-quant-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn load(p: &Path) -> Model {
    Model::load(p, &mut |_, _| {}).unwrap()
}

#[test]
fn convert_loads_back_bit_exactly() {
    let src = load(&fixture());
    let out = scratch("convert").join("llama-f16");
    convert(&src, &fixture(), &out, FloatDtype::F16, &mut |_, _| {}).unwrap();
    let back = load(&out);
    let (a, b) = (entries(&src).unwrap(), entries(&back).unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.name, y.name);
        let (xv, yv) = (x.values().unwrap(), y.values().unwrap());
        let vector = x.shape().len() == 1;
        for (p, q) in xv.iter().zip(&yv) {
            let want = if vector {
                *p
            } else {
                half::f16::from_bits(f32_to_f16(*p)).to_f32()
            };
            assert_eq!(want.to_bits(), q.to_bits(), "{}", x.name);
        }
    }
    let ids = back.tokenizer.encode("Hello world", false).unwrap();
    assert_eq!(ids, src.tokenizer.encode("Hello world", false).unwrap());
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

fn plan(format: QuantFormat) -> PlanOptions {
    PlanOptions {
        format,
        method: Method::Rtn,
        hadamard: 32,
        preset: None,
        overrides: vec![],
    }
}

#[test]
fn quantized_checkpoint_loads_runs_and_rejects_bad_metadata() {
    let src = load(&fixture());
    let dir = scratch("quant");
    let out = dir.join("llama-fp4");
    let job = QuantizeJob {
        model: &src,
        source: &fixture(),
        out: &out,
        plan: plan(QuantFormat::Fp4(Group::G32)),
        calibration: None,
    };
    let (_, report) = quantize(job, &mut |_, _, _| {}).unwrap();
    assert!(report
        .iter()
        .any(|r| r.format == "fp4_g32" && r.hadamard == 32));
    let q = load(&out);
    let w = &q.weights.layers[0].q.weight;
    assert_eq!((w.format, w.hadamard()), (QuantFormat::Fp4(Group::G32), 32));
    // The rotated, quantized layer still computes close to the original one.
    let x: Vec<f32> = (0..w.cols())
        .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
        .collect();
    let (mut a, mut b) = (vec![0f32; w.rows()], vec![0f32; w.rows()]);
    marlin_cpu::matmul::matmul(&src.weights.layers[0].q.weight, &x, 1, &mut a).unwrap();
    marlin_cpu::matmul::matmul(w, &x, 1, &mut b).unwrap();
    let err: f32 = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f32>()
        / a.iter().map(|p| p * p).sum::<f32>();
    assert!(err < 0.05, "relative error {err}");

    // Tampered metadata is refused with a message naming the tensor.
    let qc = out.join("quantization_config.json");
    let text = std::fs::read_to_string(&qc).unwrap();
    for (from, to, needle) in [
        ("\"fp4_g32\"", "\"int8_g32\"", "int8_g32 has bits 8"),
        ("\"fp4_g32\"", "\"fp4_g33\"", "unknown format"),
        ("\"hadamard\": 32", "\"hadamard\": 48", "hadamard block 48"),
        ("\"group\": 32", "\"group\": 64", "group"),
    ] {
        std::fs::write(&qc, text.replacen(from, to, 1)).unwrap();
        let e = Model::load(&out, &mut |_, _| {})
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(needle), "{from}->{to}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn two_tensor_plan() -> Vec<PlannedTensor> {
    let t = |n: &str| PlannedTensor {
        name: n.into(),
        dtype: "U8",
        shape: vec![4],
        nbytes: 4,
    };
    vec![t("a"), t("b")]
}

#[test]
fn an_abandoned_write_leaves_no_folder() {
    let dir = scratch("atomic");
    let out = dir.join("ck");
    let mut w = FolderWriter::create(&out, two_tensor_plan(), 1 << 20).unwrap();
    w.write_tensor("a", &[1, 2, 3, 4]).unwrap();
    assert!(w.write_tensor("a", &[1, 2, 3, 4]).is_err());
    let tmp = w.tmp_dir().to_path_buf();
    assert!(w.finish().is_err());
    assert!(!out.exists() && !tmp.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs in a child process (see below): starts a write and aborts half way.
#[test]
fn child_aborts_mid_write() {
    let Ok(out) = std::env::var("MARLIN_QUANT_ABORT_AT") else {
        return;
    };
    let mut w = FolderWriter::create(Path::new(&out), two_tensor_plan(), 1 << 20).unwrap();
    w.write_tensor("a", &[1, 2, 3, 4]).unwrap();
    std::process::abort();
}

#[test]
fn a_killed_writer_leaves_no_checkpoint() {
    let dir = scratch("killed");
    let out = dir.join("ck");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_aborts_mid_write",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MARLIN_QUANT_ABORT_AT", &out)
        .status()
        .unwrap();
    assert!(!status.success());
    assert!(
        !out.exists(),
        "a partial checkpoint was left at {}",
        out.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gptq_with_calibration_writes_a_loadable_checkpoint() {
    use std::sync::Arc;
    let src = Arc::new(load(&fixture()));
    let text = std::fs::read_to_string(fixture().join("../../text/english.txt")).unwrap();
    let ids = src.tokenizer.encode(&text[..4000], false).unwrap();
    let text = marlin_quant::layerwise::CalibrationText {
        tokens: ids,
        bos: None,
        samples: 4,
        seq_len: 32,
        source: "english.txt".into(),
    };
    let cal = marlin_quant::layerwise::Calibrator::new(&src, &text).unwrap();
    let dir = scratch("gptq");
    let out = dir.join("llama-int4");
    let mut p = plan(QuantFormat::from_name("int4_g32").unwrap());
    p.method = Method::MrGptq;
    p.hadamard = 0;
    let job = QuantizeJob {
        model: &src,
        source: &fixture(),
        out: &out,
        plan: p,
        calibration: Some(cal),
    };
    let (_, report) = quantize(job, &mut |_, _, _| {}).unwrap();
    let down = report
        .iter()
        .find(|r| r.name.ends_with("layers.1.mlp.down_proj.weight"))
        .unwrap();
    assert_eq!((down.method, down.hadamard), ("mr-gptq", 32));
    assert!(down.rel_error.unwrap() < 0.05, "{:?}", down.rel_error);
    let q = load(&out);
    assert_eq!(q.weights.layers[1].down.weight.format.name(), "int4_g32");
    let _ = std::fs::remove_dir_all(&dir);
}
