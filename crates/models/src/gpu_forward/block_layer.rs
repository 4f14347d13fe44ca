//! Uploading one block of an MLA / MoE model ([`BlockWeights`]) as a [`GpuLayer`]: GQA
//! attention (Qwen3-MoE) or MLA (GLM-4.7-Flash, DeepSeek) with a dense or MoE MLP.

use marlin_gpu::GpuContext;

use super::ffn::GpuFfn;
use super::mla::GpuMla;
use super::moe::GpuMoe;
use super::upload::{upload_linear, upload_proj, GpuProj, Vectors};
use super::GpuLayer;
use crate::blocks::{AttnWeights, BlockWeights, FfnWeights};
use crate::config::ModelConfig;
use crate::{Error, Result};

/// Block `i` of `cfg` on `ctx`.
pub(crate) fn block_layer(
    ctx: &GpuContext,
    cfg: &ModelConfig,
    b: &BlockWeights,
    vecs: &mut Vectors,
    i: usize,
) -> Result<GpuLayer> {
    let name = |s: &str| format!("blk.{i}.{s}");
    let attn_norm = vecs.push(&b.attn_norm);
    let (qkv, q_norm, k_norm, o, mla) = match &b.attn {
        AttnWeights::Gqa(g) => (
            upload_proj(ctx, &[&g.q, &g.k, &g.v], vecs, &name("attn_qkv"))?,
            vecs.opt(&g.q_norm),
            vecs.opt(&g.k_norm),
            upload_linear(ctx, &g.o, vecs, &name("attn_output"))?,
            None,
        ),
        AttnWeights::Mla(w) => {
            let empty = GpuProj {
                parts: Vec::new(),
                bias: None,
                width: 0,
            };
            let mla = GpuMla::upload(ctx, cfg, w, vecs, i)?;
            let o = upload_linear(ctx, &w.o, vecs, &name("attn_output"))?;
            (empty, None, None, o, Some(Box::new(mla)))
        }
    };
    let ffn = match &b.ffn {
        FfnWeights::Dense(m) => GpuFfn::Dense {
            gu: upload_proj(ctx, &[&m.gate, &m.up], vecs, &name("ffn_gate_up"))?,
            down: upload_linear(ctx, &m.down, vecs, &name("ffn_down"))?,
        },
        FfnWeights::Moe(w) => {
            let mc = cfg.moe.as_ref().ok_or_else(|| {
                Error::Config(format!("layer {i} has experts but the config no MoE"))
            })?;
            GpuFfn::Moe(Box::new(GpuMoe::upload(ctx, mc, w, vecs, i)?))
        }
    };
    Ok(GpuLayer {
        attn_norm,
        qkv,
        q_norm,
        k_norm,
        o,
        post_attn_norm: None,
        ffn_norm: vecs.push(&b.ffn_norm),
        ffn,
        post_ffn_norm: None,
        mla,
        fused: None,
    })
}
