//! Building [`Weights`] from a tensor source (a GGUF file or a Hugging Face folder), with
//! every tensor's shape checked against the config.

pub(crate) mod blocks;
pub mod checkpoint;
pub mod gguf;
mod gguf_moe;
pub mod hf;
pub mod hf_config;
mod hf_moe;

use marlin_core::{QTensor, QuantFormat};

use crate::config::{Arch, ModelConfig};
use crate::weights::{LayerWeights, Linear, Weights};
use crate::{Error, Result};

/// Anything that hands out tensors by name.
pub trait TensorSource {
    /// The tensor called `name`.
    fn tensor(&self, name: &str) -> Result<QTensor>;
    /// Whether a tensor called `name` exists.
    fn contains(&self, name: &str) -> bool;
}

/// Tensor naming convention of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// llama.cpp names: `blk.N.attn_q.weight`.
    Gguf,
    /// Hugging Face names: `model.layers.N.self_attn.q_proj.weight`.
    Hf,
}

/// The role of a tensor inside a block.
#[derive(Debug, Clone, Copy)]
enum Role {
    AttnNorm,
    Q,
    K,
    V,
    QNorm,
    KNorm,
    O,
    PostAttnNorm,
    FfnNorm,
    Gate,
    Up,
    Down,
    PostFfnNorm,
}

fn layer_name(naming: Naming, role: Role, l: usize) -> String {
    let (gguf, hf) = match role {
        Role::AttnNorm => ("attn_norm", "input_layernorm"),
        Role::Q => ("attn_q", "self_attn.q_proj"),
        Role::K => ("attn_k", "self_attn.k_proj"),
        Role::V => ("attn_v", "self_attn.v_proj"),
        Role::QNorm => ("attn_q_norm", "self_attn.q_norm"),
        Role::KNorm => ("attn_k_norm", "self_attn.k_norm"),
        Role::O => ("attn_output", "self_attn.o_proj"),
        Role::PostAttnNorm => ("post_attention_norm", "post_attention_layernorm"),
        Role::FfnNorm => ("ffn_norm", "pre_feedforward_layernorm"),
        Role::Gate => ("ffn_gate", "mlp.gate_proj"),
        Role::Up => ("ffn_up", "mlp.up_proj"),
        Role::Down => ("ffn_down", "mlp.down_proj"),
        Role::PostFfnNorm => ("post_ffw_norm", "post_feedforward_layernorm"),
    };
    match naming {
        Naming::Gguf => format!("blk.{l}.{gguf}"),
        Naming::Hf => format!("model.layers.{l}.{hf}"),
    }
}

struct Loader<'a> {
    src: &'a dyn TensorSource,
    naming: Naming,
    cfg: &'a ModelConfig,
}

impl Loader<'_> {
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<QTensor> {
        let t = self.src.tensor(name)?;
        if t.shape != [rows, cols] {
            return Err(Error::Config(format!(
                "tensor `{name}` has shape {:?}, expected [{rows}, {cols}]",
                t.shape
            )));
        }
        Ok(t)
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let t = self.src.tensor(name)?;
        if t.numel() != len {
            return Err(Error::Config(format!(
                "tensor `{name}` has shape {:?}, expected [{len}]",
                t.shape
            )));
        }
        let mut v = t.to_f32()?;
        // HF Gemma stores norm weights as offsets from 1; llama.cpp's converter adds the 1.
        if self.naming == Naming::Hf
            && self.cfg.arch == Arch::Gemma3
            && name.ends_with("norm.weight")
        {
            v.iter_mut().for_each(|x| *x += 1.0);
        }
        Ok(v)
    }

    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        if self.src.contains(name) {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }

    fn linear(&self, role: Role, l: usize, rows: usize, cols: usize) -> Result<Linear> {
        let base = layer_name(self.naming, role, l);
        let weight = self.matrix(&format!("{base}.weight"), rows, cols)?;
        let bias = self.opt_vector(&format!("{base}.bias"), rows)?;
        Ok(Linear { weight, bias })
    }

    fn norm(&self, role: Role, l: usize, len: usize) -> Result<Vec<f32>> {
        self.vector(&format!("{}.weight", layer_name(self.naming, role, l)), len)
    }

    fn layer(&self, l: usize) -> Result<LayerWeights> {
        let c = self.cfg;
        let (d, qd, kvd, f, hd) = (c.hidden, c.q_dim(), c.kv_dim(), c.ffn, c.head_dim);
        // HF llama-family checkpoints call the pre-MLP norm `post_attention_layernorm`.
        let ffn_norm_role = if self.naming == Naming::Hf && c.arch != Arch::Gemma3 {
            Role::PostAttnNorm
        } else {
            Role::FfnNorm
        };
        let sandwich = |role| {
            if c.sandwich_norms {
                self.norm(role, l, d).map(Some)
            } else {
                Ok(None)
            }
        };
        let (q_norm, k_norm) = if c.qk_norm {
            (
                Some(self.norm(Role::QNorm, l, hd)?),
                Some(self.norm(Role::KNorm, l, hd)?),
            )
        } else {
            (None, None)
        };
        Ok(LayerWeights {
            attn_norm: self.norm(Role::AttnNorm, l, d)?,
            q: self.linear(Role::Q, l, qd, d)?,
            k: self.linear(Role::K, l, kvd, d)?,
            v: self.linear(Role::V, l, kvd, d)?,
            q_norm,
            k_norm,
            o: self.linear(Role::O, l, d, qd)?,
            post_attn_norm: sandwich(Role::PostAttnNorm)?,
            ffn_norm: self.norm(ffn_norm_role, l, d)?,
            gate: self.linear(Role::Gate, l, f, d)?,
            up: self.linear(Role::Up, l, f, d)?,
            down: self.linear(Role::Down, l, d, f)?,
            post_ffn_norm: sandwich(Role::PostFfnNorm)?,
        })
    }
}

/// Load and shape-check every weight of `cfg` from `src`; `progress(done, total)` is called
/// after each layer.
pub fn load_weights(
    src: &dyn TensorSource,
    naming: Naming,
    cfg: &ModelConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Weights> {
    let ld = Loader { src, naming, cfg };
    let (embed_name, norm_name, head_name) = match naming {
        Naming::Gguf => ("token_embd.weight", "output_norm.weight", "output.weight"),
        Naming::Hf => (
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
        ),
    };
    let embed = ld.matrix(embed_name, cfg.vocab, cfg.hidden)?;
    if embed.format == QuantFormat::Q8_K {
        return Err(Error::Unsupported("Q8_K embedding tables".into()));
    }
    let total = cfg.n_layers + 1;
    let mut layers = Vec::with_capacity(cfg.n_layers);
    let mut blocks = Vec::new();
    if cfg.mla.is_some() || cfg.moe.is_some() {
        blocks = self::blocks::load_blocks(src, naming, cfg, &mut |l| progress(l, total))?;
    } else {
        for l in 0..cfg.n_layers {
            layers.push(ld.layer(l)?);
            progress(l + 1, total);
        }
    }
    let lm_head = if src.contains(head_name) {
        ld.matrix(head_name, cfg.vocab, cfg.hidden)?
    } else {
        embed.clone()
    };
    let output_norm = ld.vector(norm_name, cfg.hidden)?;
    progress(total, total);
    Ok(Weights {
        embed,
        layers,
        output_norm,
        lm_head,
        blocks,
    })
}
