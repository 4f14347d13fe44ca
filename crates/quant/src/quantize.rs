//! The quantizer driver: plan every tensor, then quantize and write them one at a time
//! (one tensor in f32 at a time) into an atomically written metal-marlin checkpoint. With
//! calibration, layers are calibrated in turn ([`crate::layerwise`]): only the current
//! layer's Hessians are held, and each layer's inputs come through the quantized layers
//! before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use marlin_core::{formats, hadamard, QTensor, QuantFormat, TensorData};
use marlin_models::load::checkpoint::{
    code_bits, QuantConfig, TensorQuant, CHECKPOINT_VERSION, QUANT_CONFIG,
};
use marlin_models::model::Model;
use rayon::prelude::*;

use crate::convert::{float_bytes, FloatDtype};
use crate::export::{self, Entry, Role};
use crate::gptq::{gptq, output_error, GptqConfig};
use crate::layerwise::Calibrator;
use crate::plan::{choose, Method, PlanOptions, TensorChoice};
use crate::st_writer::{FolderWriter, PlannedTensor, DEFAULT_SHARD_BYTES};
use crate::trellis;
use crate::{Error, Result};

/// One written tensor, for the summary table.
#[derive(Debug, Clone)]
pub struct TensorReport {
    pub name: String,
    pub layer: Option<usize>,
    /// Format name (`f16`/`f32` for float tensors).
    pub format: String,
    pub method: &'static str,
    pub hadamard: usize,
    pub params: usize,
    pub bytes: usize,
    /// Relative output error (with calibration) or weight error.
    pub rel_error: Option<f64>,
    /// Why the tensor did not get the planned format (e.g. a trellis fallback).
    pub note: Option<String>,
}

/// Rotate every row of `m` (`rows × cols`) by the block Hadamard.
fn rotate_rows(m: &mut [f32], cols: usize, block: usize) -> Result<()> {
    m.par_chunks_mut(cols)
        .try_for_each(|r| hadamard::rotate(r, block))?;
    Ok(())
}

/// `R·H·R` for a symmetric `H` (`n × n`) and the block rotation `R`.
fn rotate_hessian(h: &[f64], n: usize, block: usize) -> Result<Vec<f64>> {
    let mut m: Vec<f32> = h.iter().map(|&v| v as f32).collect();
    rotate_rows(&mut m, n, block)?;
    let mut t = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = m[i * n + j];
        }
    }
    rotate_rows(&mut t, n, block)?;
    Ok(t.iter().map(|&v| f64::from(v)).collect())
}

/// Quantize one matrix per `choice` (f32 values `w`, already in HF convention).
fn quantize_matrix(
    format: QuantFormat,
    choice: &TensorChoice,
    mut w: Vec<f32>,
    rows: usize,
    cols: usize,
    hess: Option<Vec<f64>>,
) -> Result<(Vec<u8>, f64)> {
    let rb = format.row_bytes(cols)?;
    let mut hess = hess;
    if choice.hadamard > 0 {
        rotate_rows(&mut w, cols, choice.hadamard)?;
        hess = hess
            .map(|h| rotate_hessian(&h, cols, choice.hadamard))
            .transpose()?;
    }
    let packed = match (&hess, choice.method) {
        (Some(h), Method::Gptq | Method::MrGptq) => {
            gptq(format, &w, rows, cols, h, GptqConfig::default())?
        }
        _ => {
            let global = formats::nvfp4_global(formats::finite_amax(&w));
            let mut out = vec![0u8; rows * rb];
            out.par_chunks_mut(rb)
                .zip(w.par_chunks(cols))
                .try_for_each(|(o, x)| formats::quantize_row_rtn(format, x, global, o))?;
            out
        }
    };
    let mut deq = vec![0f32; rows * cols];
    deq.par_chunks_mut(cols)
        .zip(packed.par_chunks(rb))
        .try_for_each(|(y, b)| formats::dequantize(format, b, y))?;
    let err = match &hess {
        Some(h) => output_error(&w, &deq, rows, cols, h),
        None => {
            let num: f64 = w
                .iter()
                .zip(&deq)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum();
            let den: f64 = w.iter().map(|a| f64::from(*a).powi(2)).sum();
            num / den.max(f64::MIN_POSITIVE)
        }
    };
    Ok((packed, err))
}

/// What to write and how.
pub struct QuantizeJob<'a> {
    pub model: &'a Model,
    /// The `--model` path (tokenizer files are copied from an HF folder).
    pub source: &'a Path,
    pub out: &'a Path,
    pub plan: PlanOptions,
    /// Layer-by-layer calibration (GPTQ methods).
    pub calibration: Option<Calibrator<'a>>,
}

/// Quantize and write the checkpoint; `progress(done, total, name)` after each tensor.
pub fn quantize(
    mut job: QuantizeJob<'_>,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<(PathBuf, Vec<TensorReport>)> {
    let model = job.model;
    let entries = export::entries(model)?;
    let mut notes = Vec::with_capacity(entries.len());
    let choices: Vec<TensorChoice> = entries
        .iter()
        .map(|e| {
            let c = choose(&job.plan, &e.name, e.role, *e.shape().last().unwrap_or(&0));
            let (c, note) = trellis::hook::fit(c, e.role, &e.shape());
            notes.push(note);
            c
        })
        .collect();
    let plan = entries
        .iter()
        .zip(&choices)
        .map(|(e, c)| planned(e, c.target))
        .collect::<Result<Vec<_>>>()?;
    let mut w = FolderWriter::create(job.out, plan, DEFAULT_SHARD_BYTES)?;
    let mut reports = Vec::with_capacity(entries.len());
    let mut tensors = BTreeMap::new();
    for (i, (e, c)) in entries.iter().zip(&choices).enumerate() {
        let mut c = *c;
        if let Some(cal) = job.calibration.as_mut() {
            if e.layer != cal.layer() {
                cal.end_layer()?;
                if let Some(l) = e.layer {
                    cal.begin_layer(l, &entries)?;
                }
            }
            // An expert no calibration token was routed to: RTN, counted.
            let unrouted = matches!(e.role, Role::Expert(..)) && cal.rows(e.role) == 0;
            if unrouted && c.target.is_some() && c.method != Method::Rtn {
                cal.note_rtn_fallback(&e.name);
                c.method = Method::Rtn;
            }
        }
        let shape = e.shape();
        let values = e.values()?;
        let mut method = if c.target.is_some() {
            c.method.name()
        } else {
            "-"
        };
        let (bytes, format, err) = match c.target {
            Some(f) => {
                let (rows, cols) = (shape[0], shape[1]);
                let hess = match job.calibration.as_mut() {
                    Some(cal) if c.method != Method::Rtn || f.is_trellis() => cal.hessian(e.role),
                    _ => None,
                };
                if hess.is_none() && c.method != Method::Rtn && !f.is_trellis() {
                    return Err(Error::Invalid(format!(
                        "{} needs calibration Hessians for `{}` (pass --calibration)",
                        c.method.name(),
                        e.name
                    )));
                }
                let (b, err) = match f {
                    QuantFormat::Trellis(t) => {
                        let h = hess.as_deref();
                        let (b, err, m) =
                            trellis::hook::quantize_tensor(t, &e.name, &values, rows, cols, h)?;
                        method = m;
                        (b, err)
                    }
                    _ => quantize_matrix(f, &c, values, rows, cols, hess)?,
                };
                if let Some(cal) = job.calibration.as_mut() {
                    let data = TensorData::Owned(Arc::new(b.clone()));
                    let t = QTensor::new(f, vec![rows, cols], data)?.with_hadamard(c.hadamard)?;
                    cal.replace(&e.name, t);
                }
                tensors.insert(
                    e.name.clone(),
                    TensorQuant {
                        format: f.name().into(),
                        bits: code_bits(f).unwrap_or(0),
                        group: formats::scale_group(f).unwrap_or(f.block_elems()),
                        zeros: matches!(f, QuantFormat::Int(i) if i.zeros),
                        hadamard: c.hadamard,
                        shape: [rows, cols],
                        method: method.into(),
                        rel_error: Some(err),
                    },
                );
                (b, f.name().to_string(), Some(err))
            }
            None if e.role.is_f32() => (float_bytes(&values, FloatDtype::F32), "f32".into(), None),
            None => (float_bytes(&values, FloatDtype::F16), "f16".into(), None),
        };
        w.write_tensor(&e.name, &bytes)?;
        reports.push(TensorReport {
            name: e.name.clone(),
            layer: e.layer,
            format,
            method,
            hadamard: c.hadamard,
            params: shape.iter().product(),
            bytes: bytes.len(),
            rel_error: err,
            note: notes[i].take(),
        });
        progress(i + 1, entries.len(), &e.name);
    }
    if let Some(cal) = job.calibration.as_mut() {
        cal.end_layer()?;
    }
    let qc = QuantConfig {
        format_version: CHECKPOINT_VERSION,
        producer: format!("metal-marlin {}", env!("CARGO_PKG_VERSION")),
        method: job.plan.method.name().into(),
        calibration: job
            .calibration
            .as_ref()
            .map(Calibrator::summary)
            .unwrap_or_default(),
        tensors,
    };
    let json = |v: &serde_json::Value| {
        serde_json::to_vec_pretty(v).map_err(|e| Error::Writer(e.to_string()))
    };
    let qv = serde_json::to_value(&qc).map_err(|e| Error::Writer(e.to_string()))?;
    w.write_file(QUANT_CONFIG, &json(&qv)?)?;
    w.write_file(
        "config.json",
        &json(&export::config_json(model, "float16")?)?,
    )?;
    for (name, bytes) in export::tokenizer_files(model, job.source)? {
        w.write_file(&name, &bytes)?;
    }
    Ok((w.finish()?, reports))
}

/// The plan entry of `e` stored as `target` (None: float).
fn planned(e: &Entry<'_>, target: Option<QuantFormat>) -> Result<PlannedTensor> {
    let shape = e.shape();
    Ok(match target {
        // Trellis tiles span 16 rows: the whole matrix as one byte vector.
        Some(f) if f.is_trellis() => {
            let nbytes = marlin_core::QTensor::nbytes_for(f, &shape)?;
            PlannedTensor {
                name: e.name.clone(),
                dtype: "U8",
                shape: vec![nbytes],
                nbytes,
            }
        }
        Some(f) => {
            let rb = f.row_bytes(shape[1])?;
            PlannedTensor {
                name: e.name.clone(),
                dtype: "U8",
                shape: vec![shape[0], rb],
                nbytes: shape[0] * rb,
            }
        }
        None if e.role.is_f32() => PlannedTensor {
            name: e.name.clone(),
            dtype: "F32",
            nbytes: 4 * shape.iter().product::<usize>(),
            shape,
        },
        None => PlannedTensor {
            name: e.name.clone(),
            dtype: "F16",
            nbytes: 2 * shape.iter().product::<usize>(),
            shape,
        },
    })
}
