//! The inspect summary of a Hugging Face folder.

use serde_json::Value;

use super::folder::HfModel;
use crate::gguf::{ModelSummary, SummaryEntry, TensorSummary};

const MAX_VALUE_CHARS: usize = 80;

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(MAX_VALUE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}… ({} bytes)", s.len())
    } else {
        head
    }
}

impl HfModel {
    /// The inspect summary: config keys (long values cut) and every tensor.
    pub fn summary(&self) -> ModelSummary {
        let metadata = match &self.config().raw {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| SummaryEntry {
                    key: k.clone(),
                    type_name: json_type(v).to_string(),
                    value: short(v),
                })
                .collect(),
            _ => Vec::new(),
        };
        let tensors = self
            .tensor_names()
            .iter()
            .filter_map(|name| {
                let raw = self.raw_tensor(name).ok()?;
                Some(TensorSummary {
                    name: name.clone(),
                    format: format!("{:?}", raw.dtype),
                    shape: raw.shape.iter().map(|&d| d as u64).collect(),
                    nbytes: raw.data.bytes().len() as u64,
                })
            })
            .collect();
        let n = self.shards().len();
        ModelSummary {
            container: if n == 1 {
                "safetensors".to_string()
            } else {
                format!("safetensors ({n} shards)")
            },
            architecture: Some(self.config().architecture().to_string()),
            metadata,
            tensors,
        }
    }
}
