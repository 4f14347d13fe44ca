//! `convert`: write any loaded model as a Hugging Face folder (safetensors + config.json +
//! tokenizer files) with its matrices in F16, BF16 or F32 and norms/biases in F32, so the
//! folder loads back bit-exactly (matrices round once to the chosen dtype).

use std::path::{Path, PathBuf};

use marlin_core::formats::{f32_to_bf16, f32_to_f16};
use marlin_models::model::Model;

use crate::export::{self, Role};
use crate::st_writer::{FolderWriter, PlannedTensor, DEFAULT_SHARD_BYTES};
use crate::{Error, Result};

/// Dtype of exported matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    F16,
    BF16,
    F32,
}

impl FloatDtype {
    /// Parse `f16`, `bf16` or `f32`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f16" | "float16" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::BF16),
            "f32" | "float32" => Ok(Self::F32),
            o => Err(Error::Invalid(format!("dtype `{o}` (f16, bf16, f32)"))),
        }
    }

    /// safetensors dtype and torch dtype names, bytes per value.
    fn names(self) -> (&'static str, &'static str, usize) {
        match self {
            Self::F16 => ("F16", "float16", 2),
            Self::BF16 => ("BF16", "bfloat16", 2),
            Self::F32 => ("F32", "float32", 4),
        }
    }
}

/// Little-endian bytes of `v` in `dtype` (round to nearest even).
pub fn float_bytes(v: &[f32], dtype: FloatDtype) -> Vec<u8> {
    match dtype {
        FloatDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        FloatDtype::F16 => v
            .iter()
            .flat_map(|&x| f32_to_f16(x).to_le_bytes())
            .collect(),
        FloatDtype::BF16 => v
            .iter()
            .flat_map(|&x| f32_to_bf16(x).to_le_bytes())
            .collect(),
    }
}

/// Write `model` (loaded from `source`) to the new folder `out`; `progress(done, total)`.
pub fn convert(
    model: &Model,
    source: &Path,
    out: &Path,
    dtype: FloatDtype,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PathBuf> {
    let entries = export::entries(model)?;
    let (st, torch, width) = dtype.names();
    let plan = entries
        .iter()
        .map(|e| {
            let shape = e.shape();
            let n: usize = shape.iter().product();
            if e.role == Role::Vector {
                PlannedTensor {
                    name: e.name.clone(),
                    dtype: "F32",
                    shape,
                    nbytes: 4 * n,
                }
            } else {
                PlannedTensor {
                    name: e.name.clone(),
                    dtype: st,
                    shape,
                    nbytes: width * n,
                }
            }
        })
        .collect();
    let mut w = FolderWriter::create(out, plan, DEFAULT_SHARD_BYTES)?;
    for (i, e) in entries.iter().enumerate() {
        let v = e.values()?;
        let d = if e.role == Role::Vector {
            FloatDtype::F32
        } else {
            dtype
        };
        w.write_tensor(&e.name, &float_bytes(&v, d))?;
        progress(i + 1, entries.len());
    }
    let cfg = export::config_json(model, torch)?;
    let text = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Writer(e.to_string()))?;
    w.write_file("config.json", &text)?;
    for (name, bytes) in export::tokenizer_files(model, source)? {
        w.write_file(&name, &bytes)?;
    }
    w.finish()
}
