//! Reading a model's config from GGUF metadata (llama, qwen2, qwen3, gemma3).

use marlin_core::rope::{RopeConfig, RopeMode, RopeScaling};
use marlin_core::QTensor;

use super::TensorSource;
use crate::config::{Activation, Arch, ModelConfig};
use crate::gguf::GgufFile;
use crate::{Error, Result};

impl TensorSource for GgufFile {
    fn tensor(&self, name: &str) -> Result<QTensor> {
        if self.tensor_info(name).is_none() {
            return Err(Error::MissingTensor(name.to_string()));
        }
        GgufFile::tensor(self, name)
    }

    fn contains(&self, name: &str) -> bool {
        self.tensor_info(name).is_some()
    }
}

fn usize_of(v: u64, key: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::Config(format!("`{key}` = {v} is too large")))
}

/// The model config from a GGUF file's metadata (and its `rope_freqs` tensor, if any).
pub fn config_from_gguf(g: &GgufFile) -> Result<ModelConfig> {
    let md = g.metadata();
    let arch_name = g.architecture()?;
    let arch = Arch::from_gguf_name(arch_name).ok_or_else(|| {
        Error::Unsupported(format!(
            "architecture `{arch_name}` (supported: llama, qwen2, qwen3, gemma3, deepseek2, \
             qwen3moe)"
        ))
    })?;
    let key = |k: &str| format!("{arch_name}.{k}");
    let req = |k: &str| -> Result<usize> {
        let full = key(k);
        let v = md.opt_u64(&full)?.ok_or(Error::MissingKey(full.clone()))?;
        usize_of(v, &full)
    };
    let opt = |k: &str| -> Result<Option<usize>> {
        let full = key(k);
        md.opt_u64(&full)?.map(|v| usize_of(v, &full)).transpose()
    };
    let hidden = req("embedding_length")?;
    let n_layers = req("block_count")?;
    let n_heads = req("attention.head_count")?;
    let n_kv_heads = opt("attention.head_count_kv")?.unwrap_or(n_heads);
    let head_dim = match opt("attention.key_length")? {
        Some(k) => k,
        None if n_heads > 0 && hidden % n_heads == 0 => hidden / n_heads,
        None => return Err(Error::Config("cannot derive the head dimension".into())),
    };
    let vocab = match opt("vocab_size")? {
        Some(v) => v,
        None => md.get_str_array("tokenizer.ggml.tokens")?.len(),
    };
    let n_rot = opt("rope.dimension_count")?.unwrap_or(head_dim);
    let base = md.opt_f32(&key("rope.freq_base"))?.unwrap_or(10_000.0);
    let mode = match arch {
        Arch::Llama | Arch::Deepseek2 => RopeMode::Normal,
        Arch::Qwen2 | Arch::Qwen3 | Arch::Gemma3 | Arch::Qwen3Moe => RopeMode::Neox,
    };
    let mut rope = RopeConfig::new(n_rot, base, mode);
    if let Some(kind) = md.opt_str(&key("rope.scaling.type"))? {
        let factor = md.opt_f32(&key("rope.scaling.factor"))?.unwrap_or(1.0);
        rope.scaling = match kind {
            "none" => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor },
            other => return Err(Error::Unsupported(format!("rope scaling `{other}`"))),
        };
    }
    if g.tensor_info("rope_freqs.weight").is_some() {
        rope.freq_factors = Some(GgufFile::tensor(g, "rope_freqs.weight")?.to_f32()?);
    }
    rope.validate(head_dim)?;
    let rms_eps = md
        .opt_f32(&key("attention.layer_norm_rms_epsilon"))?
        .unwrap_or(1e-5);
    let mut cfg = ModelConfig {
        arch,
        hidden,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        // MoE-only files may name just the expert size.
        ffn: match opt("feed_forward_length")? {
            Some(f) => f,
            None => req("expert_feed_forward_length")?,
        },
        vocab,
        rms_eps,
        context_length: opt("context_length")?.unwrap_or(4096),
        rope,
        rope_local: None,
        sliding_window: None,
        local_layers: vec![false; n_layers],
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        embed_scale: 1.0,
        activation: Activation::Silu,
        qk_norm: arch == Arch::Qwen3,
        qkv_bias: arch == Arch::Qwen2,
        sandwich_norms: false,
        mla: None,
        moe: None,
    };
    if arch == Arch::Gemma3 {
        gemma3_extras(&mut cfg, opt("attention.sliding_window")?)?;
    }
    super::gguf_moe::apply(g, &mut cfg)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Gemma 3: every sixth layer is global, the others use a sliding window with θ = 10k.
fn gemma3_extras(cfg: &mut ModelConfig, window: Option<usize>) -> Result<()> {
    const PATTERN: usize = 6;
    const LOCAL_BASE: f32 = 10_000.0;
    cfg.sliding_window = Some(window.unwrap_or(512));
    cfg.local_layers = (0..cfg.n_layers).map(|l| (l + 1) % PATTERN != 0).collect();
    let local = RopeConfig::new(cfg.rope.n_rot, LOCAL_BASE, RopeMode::Neox);
    local.validate(cfg.head_dim)?;
    cfg.rope_local = Some(local);
    cfg.embed_scale = (cfg.hidden as f32).sqrt();
    cfg.activation = Activation::GeluTanh;
    cfg.qk_norm = true;
    cfg.sandwich_norms = true;
    Ok(())
}
