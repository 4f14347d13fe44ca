//! `Model`: config, weights, tokenizer and chat template of a loaded model, and `load`.

use std::path::Path;

use marlin_cpu::ops::RopeTable;

use crate::chat::ChatTemplate;
use crate::config::ModelConfig;
use crate::gguf::GgufFile;
use crate::load::{self, Naming};
use crate::tokenizer::{Tokenizer, TokenizerSpec};
use crate::weights::Weights;
use crate::{Error, Result};

/// A loaded model, ready to run on the CPU.
pub struct Model {
    pub config: ModelConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    /// The model's own chat template (or a built-in fallback for its family).
    pub chat_template: ChatTemplate,
    /// A short description of where the model came from.
    pub name: String,
    pub(crate) rope: RopeTable,
    pub(crate) rope_local: Option<RopeTable>,
    /// RoPE of the MLA rope dims (Deepseek2 family).
    pub(crate) rope_mla: Option<RopeTable>,
}

impl Model {
    /// Load a GGUF file or a Hugging Face folder; `progress(done, total)` reports layers.
    pub fn load(path: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<Self> {
        if path.is_dir() {
            return crate::load::hf::load_hf(path, progress);
        }
        let g = GgufFile::open(path)?;
        let config = load::gguf::config_from_gguf(&g)?;
        let weights = load::load_weights(&g, Naming::Gguf, &config, progress)?;
        let spec = TokenizerSpec::from_gguf(&g)?;
        let tokenizer = Tokenizer::from_spec(&spec)?;
        let chat_template = match &spec.chat_template {
            Some(src) => ChatTemplate::new(src)?,
            None => ChatTemplate::for_tokenizer(&tokenizer)?,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::assemble(config, weights, tokenizer, chat_template, name)
    }

    /// Load what a `--model` argument names: `synthetic:PRESET:FORMAT` builds a random-weight
    /// model ([`crate::synthetic`]); anything else goes through [`crate::source::resolve_model`].
    pub fn load_spec(arg: &str, progress: &mut dyn FnMut(usize, usize)) -> Result<Self> {
        if arg.starts_with(crate::synthetic::PREFIX) {
            return crate::synthetic::build(arg, progress);
        }
        let path = crate::source::resolve_model(arg)?;
        Self::load(&path, progress)
    }

    /// Put a model together from parts (loaders and synthetic models use this).
    pub fn assemble(
        config: ModelConfig,
        weights: Weights,
        tokenizer: Tokenizer,
        chat_template: ChatTemplate,
        name: String,
    ) -> Result<Self> {
        config.validate()?;
        let n_weights = weights.layers.len().max(weights.blocks.len());
        if n_weights != config.n_layers {
            return Err(Error::Config(format!(
                "{n_weights} layers of weights for {} layers",
                config.n_layers
            )));
        }
        let rope_mla = match &config.mla {
            Some(m) => Some(RopeTable::new(&config.rope, m.qk_rope_head_dim)?),
            None => None,
        };
        let rope = RopeTable::new(&config.rope, config.head_dim)?;
        let rope_local = match &config.rope_local {
            Some(r) => Some(RopeTable::new(r, config.head_dim)?),
            None => None,
        };
        Ok(Self {
            config,
            weights,
            tokenizer,
            chat_template,
            name,
            rope,
            rope_local,
            rope_mla,
        })
    }

    /// Bytes of weights read per decoded token (every matrix once, embedding row aside).
    pub fn weight_bytes(&self) -> usize {
        let w = &self.weights;
        let layers: usize = w
            .layers
            .iter()
            .map(|l| {
                [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
                    .iter()
                    .map(|x| x.weight.bytes().len())
                    .sum::<usize>()
            })
            .sum();
        let top_k = self.config.moe.as_ref().map_or(0, |m| m.top_k);
        let blocks: usize = w.blocks.iter().map(|b| b.decode_bytes(top_k)).sum();
        layers + blocks + w.lm_head.bytes().len()
    }
}
