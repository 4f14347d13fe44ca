//! Multi-head latent attention (GLM-4.7-Flash / DeepSeek) on the GPU, in the absorbed form
//! for every step (prefill too): `[c_q ‖ c_kv ‖ k_pe]` from one fused projection, the
//! `mla_latent` kernel (both RMSNorms, RoPE of k_pe, the paged latent write), the query
//! halves of `q_b`, `W_UKᵀ` folded into the query by a per-head GEMV over stacked head
//! matrices (`moe_gemv` with the head as the "expert"), `attn_mla` over the latent cache,
//! `W_UV` per head the same way, then `o_proj` (recorded by the layer).

use marlin_core::rope::RopeMode;
use marlin_core::QTensor;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    attn_splits, mla_partial_len, record_attn_mla, record_matmul, record_mla_latent,
    record_moe_gemv, GpuContext, GpuWeight, MatmulIo, MlaAttnIo, MlaLatentIo, MlaShape, MoeGemvIo,
    Span, StepEncoder, MLA_HEADS_PER_GROUP,
};

use super::inputs::StepInputs;
use super::step::Scratch;
use super::upload::{upload_proj, GpuProj, Vectors};
use super::{GpuKvCache, GpuModel};
use crate::blocks::MlaWeights;
use crate::config::ModelConfig;
use crate::{Error, Result};

/// One layer's MLA weights on the GPU.
pub(crate) struct GpuMla {
    /// `[q_a | kv_a]` (kv_a alone without a query bottleneck): per token `[c_q ‖ c_kv ‖ k_pe]`.
    pub(crate) a: GpuProj,
    /// Float offset of `q_a_norm ‖ kv_a_norm` in the vector buffer.
    pub(crate) norms: usize,
    /// Width of c_q (0: queries straight from the hidden state).
    pub(crate) q_lora: usize,
    /// The rows of `q_b` that make every head's nope part, `[H·nope, in]`.
    pub(crate) q_nope: GpuWeight,
    /// The rows of `q_b` that make every head's rope part, `[H·rope, in]`.
    pub(crate) q_pe: GpuWeight,
    /// Every head's `W_UKᵀ` stacked, `[H·rank, nope]`.
    pub(crate) k_b: GpuWeight,
    /// Every head's `W_UV` stacked, `[H·v, rank]`.
    pub(crate) v_b: GpuWeight,
}

fn gpu_err(name: &str, e: marlin_gpu::Error) -> Error {
    Error::Unsupported(format!("GPU upload of {name}: {e}"))
}

/// The rows `ranges` of `t` (rows are independent in every format) as one weight.
fn select_rows(
    ctx: &GpuContext,
    t: &QTensor,
    ranges: impl Iterator<Item = std::ops::Range<usize>>,
    name: &str,
) -> Result<GpuWeight> {
    let (rows, cols) = (t.rows(), t.cols());
    let row_bytes = t.bytes().len() / rows.max(1);
    let mut bytes = Vec::new();
    let mut n = 0;
    for r in ranges {
        let b = t
            .bytes()
            .get(r.start * row_bytes..r.end * row_bytes)
            .ok_or_else(|| Error::Config(format!("{name}: rows {r:?} of {rows}")))?;
        bytes.extend_from_slice(b);
        n += r.len();
    }
    let mut w = GpuWeight::from_bytes(ctx, t.format, n, cols, &bytes, ctx.max_binding())
        .map_err(|e| gpu_err(name, e))?;
    w.hadamard = t.hadamard();
    Ok(w)
}

/// Per-head matrices stacked into one weight: their bytes when every head shares an
/// unrotated format, else their f32 values.
fn stack_heads(ctx: &GpuContext, heads: &[QTensor], name: &str) -> Result<GpuWeight> {
    let first = heads
        .first()
        .ok_or_else(|| Error::Config(format!("{name}: no heads")))?;
    let (rows, cols) = (first.rows(), first.cols());
    if heads.iter().any(|t| t.rows() != rows || t.cols() != cols) {
        return Err(Error::Config(format!("{name}: heads of different shapes")));
    }
    let total = rows * heads.len();
    let same = heads
        .iter()
        .all(|t| t.format == first.format && t.hadamard() == 0);
    let w = if same {
        let bytes: Vec<u8> = heads
            .iter()
            .flat_map(|t| t.bytes().iter().copied())
            .collect();
        GpuWeight::from_bytes(ctx, first.format, total, cols, &bytes, ctx.max_binding())
    } else {
        let mut v = Vec::with_capacity(total * cols);
        for t in heads {
            v.extend(t.to_f32()?);
        }
        GpuWeight::upload(ctx, &QTensor::from_f32(vec![total, cols], &v)?)
    };
    w.map_err(|e| gpu_err(name, e))
}

impl GpuMla {
    /// Upload layer `i`'s MLA weights.
    pub(crate) fn upload(
        ctx: &GpuContext,
        cfg: &ModelConfig,
        w: &MlaWeights,
        vecs: &mut Vectors,
        i: usize,
    ) -> Result<GpuMla> {
        let m = cfg
            .mla
            .as_ref()
            .ok_or_else(|| Error::Config(format!("layer {i} is MLA but the config is not")))?;
        let name = |s: &str| format!("blk.{i}.{s}");
        let (h, nope, rd) = (cfg.n_heads, m.qk_nope_head_dim, m.qk_rope_head_dim);
        if w.q_b.bias.is_some()
            || w.kv_a.bias.is_some()
            || w.q_a.as_ref().is_some_and(|l| l.bias.is_some())
        {
            return Err(Error::Unsupported(format!(
                "{}: MLA projections with biases on the GPU",
                name("attn")
            )));
        }
        let (a, q_lora, q_norm) = match (&w.q_a, &w.q_a_norm) {
            (Some(qa), Some(n)) => (
                upload_proj(ctx, &[qa, &w.kv_a], vecs, &name("attn_q_a_kv_a"))?,
                qa.out_features(),
                n.as_slice(),
            ),
            _ => (
                upload_proj(ctx, &[&w.kv_a], vecs, &name("attn_kv_a_mqa"))?,
                0,
                &[][..],
            ),
        };
        if a.parts.len() != 1 {
            return Err(Error::Unsupported(format!(
                "{}: q_a and kv_a in different formats on the GPU",
                name("attn")
            )));
        }
        let mut norms = q_norm.to_vec();
        norms.extend_from_slice(&w.kv_a_norm);
        let qk = nope + rd;
        if w.q_b.out_features() != h * qk {
            return Err(Error::Config(format!(
                "{}: q_b has {} rows for {h} heads of {qk}",
                name("attn_q_b"),
                w.q_b.out_features()
            )));
        }
        let qb = &w.q_b.weight;
        Ok(GpuMla {
            norms: vecs.push(&norms),
            q_lora,
            a,
            q_nope: select_rows(
                ctx,
                qb,
                (0..h).map(|j| j * qk..j * qk + nope),
                &name("attn_q_b"),
            )?,
            q_pe: select_rows(
                ctx,
                qb,
                (0..h).map(|j| j * qk + nope..(j + 1) * qk),
                &name("attn_q_b"),
            )?,
            k_b: stack_heads(ctx, &w.k_b, &name("attn_k_b"))?,
            v_b: stack_heads(ctx, &w.v_b, &name("attn_v_b"))?,
        })
    }

    /// Every weight matrix.
    pub(crate) fn weights(&self) -> impl Iterator<Item = &GpuWeight> {
        let rest = [&self.q_nope, &self.q_pe, &self.k_b, &self.v_b];
        self.a.parts.iter().chain(rest)
    }
}

impl GpuModel {
    /// Record layer `l`'s MLA over the step's tokens (normed input in `s.xn`); returns the
    /// buffer holding the per-head outputs (`n × H·v`, the input of `o_proj`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_mla(
        &self,
        enc: &mut StepEncoder<'_>,
        l: usize,
        m: &GpuMla,
        inp: &StepInputs,
        kv: &GpuKvCache,
        words: &Buffer,
        cs: &Buffer,
        s: &Scratch,
    ) -> Result<Buffer> {
        let c = &self.config;
        let mc = c
            .mla
            .as_ref()
            .ok_or_else(|| Error::Config("MLA layer without an MLA config".into()))?;
        let cache = kv.latent.get(l).ok_or_else(|| {
            Error::Config("GPU KV cache has no latent rows for this model".into())
        })?;
        let (n, h) = (inp.n, c.n_heads);
        let shape = MlaShape {
            n_tokens: n,
            n_heads: h,
            q_lora: m.q_lora,
            rank: mc.kv_lora_rank,
            rope_dim: mc.qk_rope_head_dim,
            neox: self.rope.mode == RopeMode::Neox,
            scale: c.attn_scale,
            eps: mc.lora_norm_eps,
        };
        let bytes = |floats: usize| (floats.max(1) * 4) as u64;
        let a = enc.scratch(bytes(n * m.a.width));
        self.proj(enc, &m.a, &s.xn, &a, n)?;
        let cq = enc.scratch(bytes(n * m.q_lora));
        let io = MlaLatentIo {
            norms: Span::new(&self.vectors, m.norms),
            x: &a,
            cs: Span::whole(cs),
            slots: Span::new(words, inp.slots_off),
            cache,
            cq: &cq,
        };
        record_mla_latent(enc, &shape, &io)?;
        let qx: &Buffer = if m.q_lora > 0 { &cq } else { &s.xn };
        let q_nope = enc.scratch(bytes(n * m.q_nope.rows));
        let q_pe = enc.scratch(bytes(n * m.q_pe.rows));
        record_matmul(enc, &m.q_nope, &MatmulIo::new(qx, &q_nope, n))?;
        record_matmul(enc, &m.q_pe, &MatmulIo::new(qx, &q_pe, n))?;
        // Slot t·H + j of the per-head GEMVs uses head j's matrix.
        let slots = n * h;
        let ids = enc.scratch(bytes(slots));
        let head_ids: Vec<u32> = (0..slots).map(|i| (i % h) as u32).collect();
        self.ctx
            .queue
            .write_buffer(&ids, 0, bytemuck::cast_slice(&head_ids));
        let q_abs = enc.scratch(bytes(slots * shape.rank));
        let gemv = |x, out, rows| MoeGemvIo {
            x,
            x_per_slot: 1,
            ids: &ids,
            out,
            slots,
            rows_per_expert: rows,
        };
        record_moe_gemv(enc, &m.k_b, &gemv(&q_nope, &q_abs, shape.rank))?;
        let lat = enc.scratch(bytes(slots * shape.rank));
        // One workgroup per group of heads (they share the latent loads).
        let groups = h.div_ceil(MLA_HEADS_PER_GROUP);
        let splits = attn_splits(inp.max_keys, n, groups, self.attn_split_min_keys);
        let part = (splits > 1).then(|| enc.scratch(bytes(mla_partial_len(&shape, splits))));
        let io = MlaAttnIo {
            q_abs: &q_abs,
            q_pe: &q_pe,
            cs: Span::whole(cs),
            cache,
            meta: Span::new(words, inp.meta_off),
            part: part.as_ref(),
            out: Span::whole(&lat),
        };
        record_attn_mla(enc, &shape, splits, inp.max_keys.max(1), &io)?;
        let att = enc.scratch(bytes(slots * mc.v_head_dim));
        record_moe_gemv(enc, &m.v_b, &gemv(&lat, &att, mc.v_head_dim))?;
        Ok(att)
    }
}
