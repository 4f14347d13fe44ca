//! `HfModel`: a Hugging Face folder — `config.json` plus `model.safetensors` or the shards
//! named by `model.safetensors.index.json` — checked for consistency at open time.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use marlin_core::QTensor;
use serde::Deserialize;

use super::config::HfConfig;
use super::json::check_no_duplicate_keys;
use super::safetensors::{RawTensor, SafetensorsFile};
use crate::{Error, Result};

/// Largest `config.json` or index file read into memory.
const MAX_JSON_BYTES: u64 = 64 << 20;
const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";

/// An open Hugging Face model folder.
#[derive(Debug)]
pub struct HfModel {
    dir: PathBuf,
    config: HfConfig,
    shards: Vec<(String, SafetensorsFile)>,
    /// Tensor name → shard index.
    index: HashMap<String, usize>,
    /// Tensor names, shard by shard in data order.
    names: Vec<String>,
}

#[derive(Deserialize)]
struct IndexFile {
    weight_map: HashMap<String, String>,
}

fn st_err(msg: impl Into<String>) -> Error {
    Error::Safetensors(msg.into())
}

/// Read a small JSON file, refusing huge ones before reading them.
pub(crate) fn read_json_text(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_JSON_BYTES {
        return Err(Error::Config(format!(
            "{}: {len} bytes is larger than the {MAX_JSON_BYTES}-byte limit",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// A shard name must be a plain file name inside the folder.
fn check_shard_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.ends_with(".safetensors");
    if plain {
        Ok(())
    } else {
        Err(st_err(format!(
            "{INDEX}: shard name {name:?} is not a plain .safetensors file name"
        )))
    }
}

impl HfModel {
    /// Open the folder `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let config = HfConfig::parse(&read_json_text(&dir.join("config.json"))?)?;
        let index_path = dir.join(INDEX);
        let (shards, weight_map) = if index_path.is_file() {
            let text = read_json_text(&index_path)?;
            check_no_duplicate_keys(&text).map_err(|e| st_err(format!("{INDEX}: {e}")))?;
            let idx: IndexFile =
                serde_json::from_str(&text).map_err(|e| st_err(format!("{INDEX}: {e}")))?;
            let files: BTreeSet<&String> = idx.weight_map.values().collect();
            let mut shards = Vec::with_capacity(files.len());
            for f in files {
                check_shard_name(f)?;
                let p = dir.join(f);
                if !p.is_file() {
                    let t = idx.weight_map.iter().find(|(_, s)| *s == f).map(|(t, _)| t);
                    return Err(st_err(format!(
                        "{INDEX} names shard `{f}` (for tensor `{}`), which does not exist",
                        t.map_or("?", |t| t.as_str())
                    )));
                }
                shards.push((f.clone(), SafetensorsFile::open(&p)?));
            }
            (shards, Some(idx.weight_map))
        } else if dir.join(SINGLE).is_file() {
            let st = SafetensorsFile::open(&dir.join(SINGLE))?;
            (vec![(SINGLE.to_string(), st)], None)
        } else {
            return Err(st_err(format!("{}: no {SINGLE} or {INDEX}", dir.display())));
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut names = Vec::new();
        for (i, (shard, st)) in shards.iter().enumerate() {
            for name in st.names() {
                if let Some(&j) = index.get(name) {
                    return Err(st_err(format!(
                        "tensor `{name}` appears in both `{}` and `{shard}`",
                        shards[j].0
                    )));
                }
                index.insert(name.to_string(), i);
                names.push(name.to_string());
            }
        }
        if let Some(wm) = weight_map {
            for (tensor, shard) in &wm {
                let found = index.get(tensor).map(|&i| shards[i].0.as_str());
                if found != Some(shard.as_str()) {
                    return Err(st_err(format!(
                        "{INDEX} maps tensor `{tensor}` to `{shard}`, which does not contain it"
                    )));
                }
            }
            if let Some(extra) = names.iter().find(|n| !wm.contains_key(*n)) {
                tracing::warn!("tensor `{extra}` is in a shard but not in {INDEX}");
            }
        }
        Ok(Self {
            dir,
            config,
            shards,
            index,
            names,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &HfConfig {
        &self.config
    }

    /// All tensor names, shard by shard in data order.
    pub fn tensor_names(&self) -> &[String] {
        &self.names
    }

    /// Shard file names with their parsed files.
    pub fn shards(&self) -> &[(String, SafetensorsFile)] {
        &self.shards
    }

    /// Whether tensor `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn shard_of(&self, name: &str) -> Result<&SafetensorsFile> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        Ok(&self.shards[i].1)
    }

    /// Tensor `name` as a zero-copy F32/F16/BF16 [`QTensor`].
    pub fn tensor(&self, name: &str) -> Result<QTensor> {
        self.shard_of(name)?.tensor(name)
    }

    /// Tensor `name` as stored, any dtype (for packed quantized checkpoints).
    pub fn raw_tensor(&self, name: &str) -> Result<RawTensor> {
        self.shard_of(name)?.raw(name)
    }
}
