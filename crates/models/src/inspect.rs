//! `describe`: the human-readable summary `metal-marlin inspect` prints for a model file.

use std::fmt::Write;
use std::path::Path;

use crate::gguf::GgufFile;
use crate::hf::HfModel;
use crate::Result;

/// Tensors listed unless `all` is asked for.
const TENSORS_SHOWN: usize = 40;

/// Describe a GGUF file or Hugging Face folder: container, architecture, metadata, tensors.
pub fn describe(path: &Path, all: bool) -> Result<String> {
    let summary = if path.is_dir() {
        HfModel::open(path)?.summary()
    } else {
        GgufFile::open(path)?.summary()
    };
    let mut s = String::new();
    let arch = summary.architecture.as_deref().unwrap_or("unknown");
    let _ = writeln!(s, "file:         {}", path.display());
    let _ = writeln!(s, "container:    {}", summary.container);
    let _ = writeln!(s, "architecture: {arch}");
    let _ = writeln!(
        s,
        "tensors:      {} ({:.1} MiB)",
        summary.tensors.len(),
        summary.total_tensor_bytes() as f64 / (1024.0 * 1024.0)
    );
    let _ = writeln!(s, "\nmetadata ({} entries):", summary.metadata.len());
    for e in &summary.metadata {
        let _ = writeln!(s, "  {:<48} {:<16} {}", e.key, e.type_name, e.value);
    }
    let _ = writeln!(s, "\ntensors:");
    let shown = if all {
        summary.tensors.len()
    } else {
        TENSORS_SHOWN.min(summary.tensors.len())
    };
    for t in &summary.tensors[..shown] {
        let _ = writeln!(s, "  {:<48} {:<6} {:?}", t.name, t.format, t.shape);
    }
    if shown < summary.tensors.len() {
        let _ = writeln!(
            s,
            "  … {} more (--all lists every tensor)",
            summary.tensors.len() - shown
        );
    }
    Ok(s)
}
