//! metal-marlin checkpoints: a Hugging Face folder (`config.json`, safetensors shards and
//! index, tokenizer files) plus `quantization_config.json`. A quantized tensor is stored
//! under its usual name as `U8 [rows, row_bytes]` holding the packed rows of its format; the
//! config names every quantized tensor's format, bits, group, zero points, rotation and
//! method. Trellis tensors are whole matrices (tiles span 16 rows): `U8 [nbytes]` in the
//! layout of `formats::trellis`. Unlisted tensors are plain F32/F16/BF16. The reader checks
//! every entry against the format's geometry and the stored bytes and refuses inconsistent
//! files.

use std::collections::BTreeMap;
use std::path::Path;

use marlin_core::{formats, hadamard, QTensor, QuantFormat};
use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use super::TensorSource;
use crate::hf::HfModel;
use crate::{Error, Result};

/// File name of the quantization description.
pub const QUANT_CONFIG: &str = "quantization_config.json";
/// Version of the checkpoint layout this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// How one tensor is quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorQuant {
    /// Format name ([`QuantFormat::name`]).
    pub format: String,
    /// Bits per code (4 for fp4/nvfp4/mxfp4, 8 for fp8, the integer width otherwise).
    pub bits: u32,
    /// Elements per scale group.
    pub group: usize,
    /// Whether groups carry integer zero points.
    pub zeros: bool,
    /// Block-Hadamard size the weight is stored rotated with (0 = none).
    pub hadamard: usize,
    /// Logical shape `[out, in]`.
    pub shape: [usize; 2],
    /// `rtn`, `gptq` or `mr-gptq`; trellis: `ldlq` or `viterbi`.
    pub method: String,
    /// Relative output error measured by the quantizer (‖ΔW·X‖² / ‖W·X‖², or weight error
    /// without calibration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_error: Option<f64>,
}

/// The whole `quantization_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantConfig {
    pub format_version: u32,
    /// Tool and version that wrote the checkpoint.
    pub producer: String,
    /// Default method of the run.
    pub method: String,
    /// Calibration summary (file, samples, sequence length, tokens), free-form.
    #[serde(default)]
    pub calibration: serde_json::Value,
    /// Quantized tensors by name.
    pub tensors: BTreeMap<String, TensorQuant>,
}

/// Code bits of a quantized format (`None` for float formats).
pub fn code_bits(f: QuantFormat) -> Option<u32> {
    match f {
        QuantFormat::F32 | QuantFormat::F16 | QuantFormat::BF16 => None,
        QuantFormat::Fp4(_) | QuantFormat::Nvfp4 | QuantFormat::MXFP4 => Some(4),
        QuantFormat::Fp8 => Some(8),
        QuantFormat::Int(i) => Some(i.bits.bits()),
        other => Some((other.bits_per_weight().floor() as u32).min(8)),
    }
}

/// Zero points of a format.
fn has_zeros(f: QuantFormat) -> bool {
    matches!(f, QuantFormat::Int(i) if i.zeros)
}

fn bad(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::Config(format!("{QUANT_CONFIG}: tensor `{name}`: {msg}"))
}

impl TensorQuant {
    /// The format after checking the entry's fields against each other.
    pub fn checked_format(&self, name: &str) -> Result<QuantFormat> {
        let f = QuantFormat::from_name(&self.format)
            .ok_or_else(|| bad(name, format!("unknown format `{}`", self.format)))?;
        if code_bits(f).is_none() {
            return Err(bad(name, format!("{f} is not a quantized format")));
        }
        let group = formats::scale_group(f).unwrap_or(f.block_elems());
        let want = (code_bits(f), group, has_zeros(f));
        if want != (Some(self.bits), self.group, self.zeros) {
            return Err(bad(
                name,
                format!(
                    "{f} has bits {}, group {group}, zeros {}, but the entry says bits {}, group {}, zeros {}",
                    want.0.unwrap_or(0), want.2, self.bits, self.group, self.zeros
                ),
            ));
        }
        let [rows, cols] = self.shape;
        if rows == 0 || cols == 0 {
            return Err(bad(name, format!("empty shape {:?}", self.shape)));
        }
        match f {
            QuantFormat::Trellis(t) => formats::trellis::layout(t, rows, cols).map(|_| 0),
            _ => f.row_bytes(cols),
        }
        .map_err(|e| bad(name, e))?;
        if self.hadamard != 0
            && (!hadamard::valid_block(self.hadamard) || !cols.is_multiple_of(self.hadamard))
        {
            return Err(bad(
                name,
                format!(
                    "hadamard block {} does not tile {cols} inputs",
                    self.hadamard
                ),
            ));
        }
        let methods: &[&str] = if f.is_trellis() {
            &["ldlq", "viterbi"]
        } else {
            &["rtn", "gptq", "mr-gptq"]
        };
        if !methods.contains(&self.method.as_str()) {
            return Err(bad(name, format!("unknown method `{}`", self.method)));
        }
        Ok(f)
    }
}

impl QuantConfig {
    /// Parse and check the version of a `quantization_config.json` text.
    pub fn parse(text: &str) -> Result<Self> {
        let c: QuantConfig = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("{QUANT_CONFIG}: {e}")))?;
        if c.format_version != CHECKPOINT_VERSION {
            return Err(Error::Config(format!(
                "{QUANT_CONFIG}: format_version {} (this build reads {CHECKPOINT_VERSION})",
                c.format_version
            )));
        }
        Ok(c)
    }
}

/// A checkpoint folder as a tensor source: quantized tensors are rebuilt from their packed
/// U8 rows, everything else comes from the folder as is.
pub struct Checkpoint {
    pub hf: HfModel,
    pub quant: QuantConfig,
}

impl Checkpoint {
    /// Wrap an open folder that holds a `quantization_config.json`; every entry is checked
    /// against its stored tensor now, so a bad file fails before any layer loads.
    pub fn open(hf: HfModel) -> Result<Self> {
        let path = hf.dir().join(QUANT_CONFIG);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?;
        let quant = QuantConfig::parse(&text)?;
        let ck = Self { hf, quant };
        for name in ck.quant.tensors.keys() {
            ck.quantized(name)?;
        }
        Ok(ck)
    }

    /// Whether `dir` is a metal-marlin checkpoint.
    pub fn is_checkpoint(dir: &Path) -> bool {
        dir.join(QUANT_CONFIG).is_file()
    }

    fn quantized(&self, name: &str) -> Result<QTensor> {
        let q = self
            .quant
            .tensors
            .get(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        let f = q.checked_format(name)?;
        if !self.hf.contains(name) {
            return Err(bad(name, "listed but not stored in the safetensors files"));
        }
        let raw = self.hf.raw_tensor(name)?;
        let [rows, cols] = q.shape;
        let want = match f {
            QuantFormat::Trellis(_) => vec![QTensor::nbytes_for(f, &q.shape)?],
            _ => vec![rows, f.row_bytes(cols)?],
        };
        if raw.dtype != Dtype::U8 || raw.shape != want {
            return Err(bad(
                name,
                format!(
                    "{f} {:?} must be stored as U8 {want:?}, found {:?} {:?}",
                    q.shape, raw.dtype, raw.shape
                ),
            ));
        }
        let t = QTensor::new(f, vec![rows, cols], raw.data)?;
        Ok(t.with_hadamard(q.hadamard)?)
    }
}

impl TensorSource for Checkpoint {
    fn tensor(&self, name: &str) -> Result<QTensor> {
        if self.quant.tensors.contains_key(name) {
            return self.quantized(name);
        }
        if !self.hf.contains(name) {
            return Err(Error::MissingTensor(name.to_string()));
        }
        self.hf.tensor(name)
    }

    fn contains(&self, name: &str) -> bool {
        self.hf.contains(name)
    }
}
