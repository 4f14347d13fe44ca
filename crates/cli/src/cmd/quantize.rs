//! `metal-marlin quantize`: plan, quantize tensor by tensor (GPTQ methods calibrate layer by
//! layer as they go) with a progress bar, write the checkpoint atomically, print a summary
//! table.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use marlin_models::Model;
use marlin_quant::layerwise::{CalibrationText, Calibrator};
use marlin_quant::plan::{parse_format, Method, Override, PlanOptions, Preset};
use marlin_quant::quantize::{quantize, QuantizeJob, TensorReport};
use marlin_quant::trellis::hook::parse_trellis;

use crate::args::QuantizeArgs;
use crate::common::{init_threads, progress_bar};

pub fn run(a: QuantizeArgs) -> Result<()> {
    init_threads(a.threads)?;
    if a.device != "cpu" {
        bail!("--device {}: calibration runs on the cpu only", a.device);
    }
    let format = match parse_trellis(&a.format, a.bits, a.codebook.as_deref())? {
        Some(f) => f,
        None if a.bits.is_some() || a.codebook.is_some() => {
            bail!("--bits and --codebook go with --format trellis")
        }
        None => parse_format(&a.format, a.group_size)?
            .with_context(|| format!("--format {} keeps weights in float", a.format))?,
    };
    let method = Method::parse(&a.method)?;
    let preset = a
        .mixed_precision
        .as_deref()
        .map(Preset::parse)
        .transpose()?;
    let overrides = a
        .overrides
        .iter()
        .map(|o| Override::parse(o, a.group_size))
        .collect::<Result<Vec<_>, _>>()?;
    if method != Method::Rtn && a.calibration.is_none() {
        bail!("--method {} needs --calibration TEXTFILE", a.method);
    }
    let path = marlin_models::source::resolve_model(&a.model)?;
    let pb = progress_bar(1, "loading");
    let model = Arc::new(Model::load(&path, &mut |d, t| {
        pb.set_length(t as u64);
        pb.set_position(d as u64);
    })?);
    let calibration = match &a.calibration {
        // Trellis uses the Hessians whenever there is calibration (LDLQ; else plain Viterbi).
        Some(file) if method != Method::Rtn || format.is_trellis() => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let ids = model.tokenizer.encode(&text, false)?;
            let bos = model
                .tokenizer
                .add_bos()
                .then(|| model.tokenizer.bos_id())
                .flatten();
            let text = CalibrationText {
                tokens: ids,
                bos,
                samples: a.samples,
                seq_len: a.seq_len,
                source: file.display().to_string(),
            };
            let one_pass = match a.calibration_order.as_str() {
                "sequential" => false,
                "one-pass" => true,
                o => bail!("--calibration-order {o} (sequential, one-pass)"),
            };
            Some(Calibrator::new(&model, &text)?.one_pass(one_pass))
        }
        _ => None,
    };
    pb.set_message("quantizing");
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {pos}/{len} {elapsed} eta {eta} {prefix}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    let t0 = std::time::Instant::now();
    let job = QuantizeJob {
        model: &model,
        source: Path::new(&path),
        out: &a.out,
        plan: PlanOptions {
            format,
            method,
            hadamard: a.hadamard,
            preset,
            overrides,
        },
        calibration,
    };
    let (out, reports) = quantize(job, &mut |d, t, name| {
        pb.set_length(t as u64);
        pb.set_position(d as u64);
        pb.set_prefix(name.to_string());
    })?;
    pb.finish_and_clear();
    let qc = out.join(marlin_models::load::checkpoint::QUANT_CONFIG);
    let calibration = std::fs::read_to_string(&qc)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| v["calibration"].clone())
        .unwrap_or_default();
    summary(
        &out,
        &reports,
        &calibration,
        t0.elapsed().as_secs_f64(),
        a.json,
    );
    Ok(())
}

/// Per-layer rows, then totals: bits per weight of the quantized linears and of all weights.
fn summary(out: &Path, r: &[TensorReport], calibration: &serde_json::Value, secs: f64, json: bool) {
    let q: Vec<&TensorReport> = r.iter().filter(|t| t.rel_error.is_some()).collect();
    let bits = |ts: &[&TensorReport]| {
        let p: usize = ts.iter().map(|t| t.params).sum();
        8.0 * ts.iter().map(|t| t.bytes).sum::<usize>() as f64 / p.max(1) as f64
    };
    let all: Vec<&TensorReport> = r.iter().collect();
    let bytes: usize = r.iter().map(|t| t.bytes).sum();
    let mean_err = q.iter().filter_map(|t| t.rel_error).sum::<f64>() / q.len().max(1) as f64;
    if json {
        let tensors: Vec<_> = r
            .iter()
            .map(|t| {
                serde_json::json!({"name": t.name, "format": t.format, "method": t.method,
                "hadamard": t.hadamard, "bytes": t.bytes, "rel_error": t.rel_error,
                "note": t.note})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"out": out.display().to_string(), "seconds": secs,
            "bytes": bytes, "bpw_quantized": bits(&q), "bpw_all": bits(&all),
            "mean_rel_error": mean_err, "calibration": calibration, "tensors": tensors})
        );
        return;
    }
    println!(
        "{:<48} {:>11} {:>8} {:>4} {:>10} {:>10}",
        "tensor", "format", "method", "had", "bytes", "rel.err"
    );
    for t in r.iter().filter(|t| t.format != "f32") {
        let e = t.rel_error.map_or("-".to_string(), |e| format!("{e:.3e}"));
        println!(
            "{:<48} {:>11} {:>8} {:>4} {:>10} {:>10}",
            t.name, t.format, t.method, t.hadamard, t.bytes, e
        );
    }
    println!(
        "\n{}: {:.1} MB, {:.3} bits/weight (quantized linears), {:.3} bits/weight (all), mean rel. error {:.3e}, {:.1} s",
        out.display(), bytes as f64 / 1e6, bits(&q), bits(&all), mean_err, secs
    );
    for t in r.iter().filter(|t| t.note.is_some()) {
        println!(
            "note: {}: {}",
            t.name,
            t.note.as_deref().unwrap_or_default()
        );
    }
    if let Some(peak) = calibration["peak_hessian_bytes"].as_u64() {
        let fallback = calibration["rtn_fallback"].as_array().map_or(0, Vec::len);
        println!(
            "calibration: {} order, peak Hessians {:.1} MB, {fallback} expert tensors without routed tokens (RTN)",
            calibration["order"].as_str().unwrap_or("?"),
            peak as f64 / 1e6
        );
    }
}
