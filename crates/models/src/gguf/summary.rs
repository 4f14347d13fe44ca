//! `ModelSummary`: what `metal-marlin inspect` prints for a GGUF file or a HF folder.

use std::fmt;

use super::file::GgufFile;

/// One printable metadata entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryEntry {
    pub key: String,
    /// Type name, e.g. `u32` or `array[string]`.
    pub type_name: String,
    /// Abbreviated value (long strings and arrays cut).
    pub value: String,
}

/// One tensor line.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSummary {
    pub name: String,
    /// Format name: ggml type (`Q4_K`) or safetensors dtype (`BF16`).
    pub format: String,
    /// Row-major shape, outermost first.
    pub shape: Vec<u64>,
    pub nbytes: u64,
}

/// A printable description of a model file or folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// Container description, e.g. `GGUF v3` or `safetensors (2 shards)`.
    pub container: String,
    /// `general.architecture` or the config's architecture, when known.
    pub architecture: Option<String>,
    pub metadata: Vec<SummaryEntry>,
    pub tensors: Vec<TensorSummary>,
}

impl ModelSummary {
    /// Sum of all tensor sizes.
    pub fn total_tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.nbytes).sum()
    }
}

impl GgufFile {
    /// The inspect summary of this file.
    pub fn summary(&self) -> ModelSummary {
        ModelSummary {
            container: format!("GGUF v{}", self.version()),
            architecture: self.architecture().ok().map(str::to_owned),
            metadata: self
                .metadata()
                .entries()
                .iter()
                .map(|(k, v)| SummaryEntry {
                    key: k.clone(),
                    type_name: v.type_name(),
                    value: v.abbreviated(),
                })
                .collect(),
            tensors: self
                .tensors()
                .iter()
                .map(|t| TensorSummary {
                    name: t.name.clone(),
                    format: t.ggml_type.name.to_string(),
                    shape: t.shape(),
                    nbytes: t.nbytes,
                })
                .collect(),
        }
    }
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "container:    {}", self.container)?;
        let arch = self.architecture.as_deref().unwrap_or("(unknown)");
        writeln!(f, "architecture: {arch}")?;
        writeln!(f, "metadata ({} entries):", self.metadata.len())?;
        for e in &self.metadata {
            writeln!(f, "  {} ({}) = {}", e.key, e.type_name, e.value)?;
        }
        writeln!(
            f,
            "tensors ({}, {} bytes):",
            self.tensors.len(),
            self.total_tensor_bytes()
        )?;
        for t in &self.tensors {
            writeln!(f, "  {:<48} {:<8} {:?}", t.name, t.format, t.shape)?;
        }
        Ok(())
    }
}
