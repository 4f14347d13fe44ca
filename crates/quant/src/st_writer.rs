//! Streaming, atomic writer of an HF-style folder: the tensor list (names, dtypes, shapes,
//! byte sizes) is fixed up front, shards get their safetensors headers first, then tensor
//! bytes are appended in plan order — one tensor in memory at a time. Everything goes to a
//! hidden temporary folder beside the target, renamed onto it only by [`FolderWriter::finish`];
//! an error, a panic or a kill before that leaves no (partial) target folder.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::io;
use crate::{Error, Result};

/// One tensor of the plan.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    pub name: String,
    /// safetensors dtype string: "U8", "F16", "BF16", "F32".
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    /// Exact byte size of the data.
    pub nbytes: usize,
}

/// Default largest shard (bytes of tensor data).
pub const DEFAULT_SHARD_BYTES: usize = 2 << 30;

struct Shard {
    file: String,
    /// Plan indices in this shard.
    tensors: Vec<usize>,
}

/// Writes a folder atomically; see the module docs.
pub struct FolderWriter {
    target: PathBuf,
    tmp: PathBuf,
    plan: Vec<PlannedTensor>,
    shards: Vec<Shard>,
    /// Next plan index to write, current shard, its open file.
    next: usize,
    shard: usize,
    out: Option<BufWriter<File>>,
    done: bool,
}

fn shard_names(n: usize) -> Vec<String> {
    if n == 1 {
        return vec!["model.safetensors".into()];
    }
    (1..=n)
        .map(|i| format!("model-{i:05}-of-{n:05}.safetensors"))
        .collect()
}

impl FolderWriter {
    /// Start writing `target` (which must not exist yet) with tensors `plan`, splitting the
    /// data into shards of at most `shard_bytes` (a bigger tensor gets a shard of its own).
    pub fn create(target: &Path, plan: Vec<PlannedTensor>, shard_bytes: usize) -> Result<Self> {
        if target.exists() {
            return Err(Error::Invalid(format!(
                "{} already exists; choose a new --out folder",
                target.display()
            )));
        }
        let name = target
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("bad output path {}", target.display())))?;
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = parent.unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = parent.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        let mut groups: Vec<Vec<usize>> = vec![];
        let mut size = 0usize;
        for (i, t) in plan.iter().enumerate() {
            if groups.is_empty() || (size > 0 && size + t.nbytes > shard_bytes) {
                groups.push(vec![]);
                size = 0;
            }
            size += t.nbytes;
            if let Some(g) = groups.last_mut() {
                g.push(i);
            }
        }
        if groups.is_empty() {
            groups.push(vec![]);
        }
        let names = shard_names(groups.len());
        let shards = names
            .into_iter()
            .zip(groups)
            .map(|(file, tensors)| Shard { file, tensors })
            .collect();
        let mut w = Self {
            target: target.to_path_buf(),
            tmp,
            plan,
            shards,
            next: 0,
            shard: 0,
            out: None,
            done: false,
        };
        w.open_shard(0)?;
        Ok(w)
    }

    /// The temporary folder (files written with [`FolderWriter::write_file`] go here).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    fn open_shard(&mut self, s: usize) -> Result<()> {
        let shard = &self.shards[s];
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), json!({"format": "pt"}));
        let mut off = 0usize;
        for &i in &shard.tensors {
            let t = &self.plan[i];
            header.insert(
                t.name.clone(),
                json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [off, off + t.nbytes]}),
            );
            off += t.nbytes;
        }
        let mut text = serde_json::to_string(&Value::Object(header))
            .map_err(|e| Error::Writer(e.to_string()))?;
        while !text.len().is_multiple_of(8) {
            text.push(' ');
        }
        let path = self.tmp.join(&shard.file);
        let f = File::create(&path).map_err(io(&path))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        out.write_all(&(text.len() as u64).to_le_bytes())
            .and_then(|_| out.write_all(text.as_bytes()))
            .map_err(io(&path))?;
        self.out = Some(out);
        self.shard = s;
        Ok(())
    }

    /// Name of the next tensor the plan expects.
    pub fn next_name(&self) -> Option<&str> {
        self.plan.get(self.next).map(|t| t.name.as_str())
    }

    /// Append the data of the next planned tensor; `name` and the size must match the plan.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let t = self
            .plan
            .get(self.next)
            .ok_or_else(|| Error::Writer(format!("`{name}` is not in the plan")))?;
        if t.name != name || t.nbytes != data.len() {
            return Err(Error::Writer(format!(
                "expected `{}` ({} bytes), got `{name}` ({} bytes)",
                t.name,
                t.nbytes,
                data.len()
            )));
        }
        while !self.shards[self.shard].tensors.contains(&self.next) {
            self.close_shard()?;
            self.open_shard(self.shard + 1)?;
        }
        let path = self.tmp.join(&self.shards[self.shard].file);
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::Writer("no open shard".into()))?;
        out.write_all(data).map_err(io(&path))?;
        self.next += 1;
        Ok(())
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some(mut out) = self.out.take() {
            let path = self.tmp.join(&self.shards[self.shard].file);
            out.flush().map_err(io(&path))?;
            let f = out.into_inner().map_err(|e| Error::Writer(e.to_string()))?;
            f.sync_all().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Write a small side file (config, tokenizer) into the folder.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.tmp.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))
    }

    /// Check that every tensor was written, write the index (for several shards), then move
    /// the folder into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        if self.next != self.plan.len() {
            return Err(Error::Writer(format!(
                "{} of {} tensors written",
                self.next,
                self.plan.len()
            )));
        }
        self.close_shard()?;
        if self.shards.len() > 1 {
            let mut map = BTreeMap::new();
            for s in &self.shards {
                for &i in &s.tensors {
                    map.insert(self.plan[i].name.clone(), s.file.clone());
                }
            }
            let total: usize = self.plan.iter().map(|t| t.nbytes).sum();
            let index = json!({"metadata": {"total_size": total}, "weight_map": map});
            let text =
                serde_json::to_vec_pretty(&index).map_err(|e| Error::Writer(e.to_string()))?;
            self.write_file("model.safetensors.index.json", &text)?;
        }
        std::fs::rename(&self.tmp, &self.target).map_err(io(&self.target))?;
        self.done = true;
        Ok(self.target.clone())
    }
}

impl Drop for FolderWriter {
    fn drop(&mut self) {
        if !self.done {
            self.out = None;
            // Best effort: an abandoned write leaves no partial folder behind.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
