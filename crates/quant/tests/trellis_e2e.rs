//! Trellis end to end on the tiny llama: quantize to trellis3 (plain Viterbi without
//! calibration, LDLQ with it), write the checkpoint, load it, run the CPU forward and
//! compare the logits with the base model's (and with int3 RTN at a similar size).

mod common;

use common::*;
use marlin_core::{QuantFormat, TrellisFormat};
use marlin_models::Model;
use marlin_quant::layerwise::{CalibrationText, Calibrator};
use marlin_quant::plan::{Method, PlanOptions};
use marlin_quant::quantize::{quantize, QuantizeJob};

fn plan(format: &str) -> PlanOptions {
    PlanOptions {
        format: QuantFormat::from_name(format).unwrap(),
        method: Method::Rtn,
        hadamard: 0,
        preset: None,
        overrides: vec![],
    }
}

fn calibration(model: &Model) -> CalibrationText {
    CalibrationText {
        tokens: model.tokenizer.encode(&english()[..6000], false).unwrap(),
        bos: None,
        samples: 8,
        seq_len: 64,
        source: "english.txt".into(),
    }
}

/// Mean KL of the checkpoint quantized by `plan` (with or without calibration), and the
/// loaded checkpoint.
fn kl_of(src: &Model, name: &str, plan: PlanOptions, calibrated: bool) -> (f64, Model) {
    let ev = eval_ids(src, &english());
    let base = logits(src, &ev);
    let out = scratch(name).join("ck");
    let text = calibration(src);
    let job = QuantizeJob {
        model: src,
        source: &tiny("llama"),
        out: &out,
        plan,
        calibration: calibrated.then(|| Calibrator::new(src, &text).unwrap()),
    };
    let (_, reports) = quantize(job, &mut |_, _, _| {}).unwrap();
    let want = if calibrated { "ldlq" } else { "viterbi" };
    for r in reports.iter().filter(|r| r.format.starts_with("trellis")) {
        assert_eq!(r.method, want, "{}", r.name);
    }
    let q = load(&out);
    let kl = mean_kl(&base, &logits(&q, &ev), src.config.vocab);
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
    (kl, q)
}

#[test]
fn trellis3_checkpoint_runs_close_to_the_base() {
    let src = load(&tiny("llama"));
    let (plain, q) = kl_of(&src, "trellis3-viterbi", plan("trellis3"), false);
    let w = &q.weights.layers[0].q.weight;
    assert!(matches!(
        w.format,
        QuantFormat::Trellis(TrellisFormat { bits: 3, .. })
    ));
    assert_eq!(w.shape, src.weights.layers[0].q.weight.shape);
    let (ldlq, _) = kl_of(&src, "trellis3-ldlq", plan("trellis3"), true);
    let (int3, _) = kl_of(&src, "trellis3-int3", plan("int3_g32"), false);
    eprintln!("tiny llama mean KL: trellis3 viterbi {plain:.4e}, ldlq {ldlq:.4e}, int3_g32 rtn {int3:.4e}");
    // Measured: viterbi 0.3125, ldlq 0.246, int3_g32 rtn 0.432 (a random-weight model: every
    // format's KL is large here; the ordering is the point).
    assert!(ldlq < 0.3 && plain < 0.4, "viterbi {plain}, ldlq {ldlq}");
    assert!(ldlq < plain, "ldlq {ldlq} vs viterbi {plain}");
    assert!(plain < int3, "trellis3 {plain} vs int3_g32 rtn {int3}");
}
