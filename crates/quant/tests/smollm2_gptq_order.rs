//! (Ignored: minutes.) The real SmolLM2-135M (Q4_1 GGUF) quantized with GPTQ in the
//! sequential layer-by-layer order and in the previous one-pass order (every layer's inputs
//! from the unquantized model): KL against the base on held-out English text, and the peak
//! Hessian memory of each (one layer either way). Run with `cargo test -p marlin-quant --test
//! smollm2_gptq_order -- --ignored --nocapture`. Measured (16 × 256 calibration tokens, KL
//! over the last 512 tokens): int4_g128 sequential 0.1180, one-pass 0.1099; int3z_g128
//! sequential 0.4011, one-pass 0.4198; peak Hessians 13.4 MB (one layer) where the old
//! one-pass collector held all 30 layers (403 MB).

mod common;

use common::*;
use marlin_core::QuantFormat;
use marlin_quant::layerwise::{CalibrationText, Calibrator};
use marlin_quant::plan::{Method, PlanOptions};
use marlin_quant::quantize::{quantize, QuantizeJob};

#[test]
#[ignore]
fn smollm2_sequential_gptq_is_no_worse_than_one_pass() {
    let path = marlin_models::source::resolve_model("default")
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models.sh)"));
    let src = load(&path);
    let text = english();
    let ids = src.tokenizer.encode(&text, false).unwrap();
    let (calib, eval) = ids.split_at(ids.len() - 512);
    let base = logits(&src, eval);
    let dir = scratch("smol-order");
    let formats = std::env::var("MARLIN_ORDER_FORMATS").unwrap_or("int4_g128,int3z_g128".into());
    for format in formats.split(',') {
        let mut kl = vec![];
        for one_pass in [false, true] {
            let out = dir.join(format!("{format}-{one_pass}"));
            let t = CalibrationText {
                tokens: calib.to_vec(),
                bos: src.tokenizer.bos_id(),
                samples: 16,
                seq_len: 256,
                source: "english.txt".into(),
            };
            let cal = Calibrator::new(&src, &t).unwrap().one_pass(one_pass);
            let job = QuantizeJob {
                model: &src,
                source: &path,
                out: &out,
                plan: PlanOptions {
                    format: QuantFormat::from_name(format).unwrap(),
                    method: Method::Gptq,
                    hadamard: 0,
                    preset: None,
                    overrides: vec![],
                },
                calibration: Some(cal),
            };
            let t0 = std::time::Instant::now();
            quantize(job, &mut |_, _, _| {}).unwrap();
            let secs = t0.elapsed().as_secs_f64();
            let qc: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(out.join("quantization_config.json")).unwrap(),
            )
            .unwrap();
            let k = mean_kl(&base, &logits(&load(&out), eval), src.config.vocab);
            eprintln!(
                "{format} gptq one_pass={one_pass}: KL {k:.4}, peak Hessians {} B, {secs:.0} s",
                qc["calibration"]["peak_hessian_bytes"]
            );
            kl.push(k);
        }
        assert!(
            kl[0] <= kl[1] * 1.05,
            "{format}: sequential {} vs one-pass {}",
            kl[0],
            kl[1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
