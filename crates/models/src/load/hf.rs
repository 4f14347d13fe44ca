//! Loading a Hugging Face folder: `config.json`, safetensors weights, `tokenizer.json`
//! (a metal-marlin checkpoint when it holds a `quantization_config.json`).

use std::path::Path;

use marlin_core::QTensor;

use super::checkpoint::Checkpoint;
use super::hf_config::config_from_hf;
use super::{load_weights, Naming, TensorSource};
use crate::chat::ChatTemplate;
use crate::hf::HfModel;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

impl TensorSource for HfModel {
    fn tensor(&self, name: &str) -> Result<QTensor> {
        if !HfModel::contains(self, name) {
            return Err(Error::MissingTensor(name.to_string()));
        }
        HfModel::tensor(self, name)
    }

    fn contains(&self, name: &str) -> bool {
        HfModel::contains(self, name)
    }
}

/// Load a model from a Hugging Face folder.
pub fn load_hf(dir: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<Model> {
    let hf = HfModel::open(dir)?;
    let raw = &hf.config().raw;
    let text_cfg = raw.get("text_config").unwrap_or(raw);
    let config = config_from_hf(text_cfg)?;
    let weights = if Checkpoint::is_checkpoint(dir) {
        load_weights(&Checkpoint::open(hf)?, Naming::Hf, &config, progress)?
    } else {
        load_weights(&hf, Naming::Hf, &config, progress)?
    };
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(Error::Tokenizer(format!(
            "{} has no tokenizer.json",
            dir.display()
        )));
    }
    let tokenizer = Tokenizer::from_file(&tok_path)?;
    let chat_template = ChatTemplate::for_tokenizer(&tokenizer)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Model::assemble(config, weights, tokenizer, chat_template, name)
}
