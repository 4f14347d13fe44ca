//! Multi-head latent attention (GLM-4.7-Flash / DeepSeek) on the GPU, in the absorbed form
//! for every step (prefill too): `[c_q ‖ c_kv ‖ k_pe]` from one fused projection, the
//! `mla_latent` kernel (both RMSNorms, RoPE of k_pe, the paged latent write), the query
//! halves of `q_b`, `W_UKᵀ` folded into the query (a per-head GEMV over stacked head
//! matrices: `moe_gemv` with the head as the "expert"; prompt steps instead use `W_UKᵀ`
//! multiplied into `q_b` at upload), `attn_mla` over the latent cache, `W_UV` per head the
//! same way as `W_UKᵀ`, then `o_proj` (recorded by the layer).

mod absorb;
mod step;

use std::sync::Mutex;

use marlin_core::{QTensor, QuantFormat};
use marlin_gpu::{
    norm_with_eps, upload_f32, GpuContext, GpuWeight, PooledBuffer, MLA_MAX_RANK, MLA_MAX_WIDTH,
};

use super::upload::{upload_proj, GpuProj, Vectors};
use crate::blocks::MlaWeights;
use crate::config::ModelConfig;
use crate::{Error, Result};

/// One layer's MLA weights on the GPU.
pub(crate) struct GpuMla {
    /// `[q_a | kv_a]` (kv_a alone without a query bottleneck): per token `[c_q ‖ c_kv ‖ k_pe]`.
    pub(crate) a: GpuProj,
    /// Float offset of `q_a_norm ‖ kv_a_norm` in the vector buffer.
    pub(crate) norms: usize,
    /// `q_a_norm` as `gemv_norm` reads it (with q_lora): fused decode steps fold it into
    /// the q GEMVs, which then read c_q straight from the projection.
    pub(crate) q_norm: Option<PooledBuffer>,
    /// Width of c_q (0: queries straight from the hidden state).
    pub(crate) q_lora: usize,
    /// The rows of `q_b` that make every head's nope part, `[H·nope, in]`.
    pub(crate) q_nope: GpuWeight,
    /// Every head's `W_UKᵀ` stacked, `[H·rank, nope]`.
    pub(crate) k_b: GpuWeight,
    /// Every head's `W_UKᵀ` multiplied into its nope rows of `q_b` at upload, `[H·rank,
    /// q_lora]`: prompt steps make `q̃` with this one matmul. Decode keeps `q_nope` and the
    /// per-head `k_b` GEMV, which read fewer bytes (GLM-4.7-Flash: 15.7 MB of f16 against
    /// 5.5 MB). `None` without a query bottleneck or with `MARLIN_GPU_MLA_ABSORB_Q=0`.
    pub(crate) q_fold: Option<GpuWeight>,
    /// The rows of `q_b` that make every head's rope part, `[H·rope, in]`.
    pub(crate) q_pe: GpuWeight,
    /// Every head's `W_UV` stacked, `[H·v, rank]`.
    pub(crate) v_b: GpuWeight,
    /// The head of every (token, head) slot of the per-head GEMVs (`slot % H`), u32, for
    /// the most slots a step has needed so far.
    pub(crate) head_ids: Mutex<Option<(usize, PooledBuffer)>>,
}

fn gpu_err(name: &str, e: marlin_gpu::Error) -> Error {
    Error::Unsupported(format!("GPU upload of {name}: {e}"))
}

/// `values` (`[rows, cols]`) as an F16 weight: the fallback for tensors whose bytes cannot
/// be cut by rows or concatenated (trellis tiles span 16 rows; rotated heads).
fn upload_f16(ctx: &GpuContext, rows: usize, cols: usize, values: &[f32]) -> Result<GpuWeight> {
    let t = marlin_core::formats::quantize_tensor(QuantFormat::F16, &[rows, cols], values)?;
    Ok(GpuWeight::upload(ctx, &t)?)
}

/// The rows `ranges` of `t` as one weight: their bytes (rows are independent in every row
/// format), or their values in F16 for a trellis tensor.
fn select_rows(
    ctx: &GpuContext,
    t: &QTensor,
    ranges: impl Iterator<Item = std::ops::Range<usize>>,
    name: &str,
) -> Result<GpuWeight> {
    let (rows, cols) = (t.rows(), t.cols());
    let ranges: Vec<_> = ranges.collect();
    if ranges.iter().any(|r| r.end > rows) {
        return Err(Error::Config(format!("{name}: rows {ranges:?} of {rows}")));
    }
    let n: usize = ranges.iter().map(|r| r.len()).sum();
    if t.format.is_trellis() {
        let v = t.to_f32()?;
        let picked: Vec<f32> = ranges
            .iter()
            .flat_map(|r| v[r.start * cols..r.end * cols].iter().copied())
            .collect();
        return upload_f16(ctx, n, cols, &picked).map_err(|e| with_name(name, e));
    }
    let rb = t.row_bytes();
    let bytes: Vec<u8> = ranges
        .iter()
        .flat_map(|r| t.bytes()[r.start * rb..r.end * rb].iter().copied())
        .collect();
    let mut w = GpuWeight::from_bytes(ctx, t.format, n, cols, &bytes, ctx.max_binding())
        .map_err(|e| gpu_err(name, e))?;
    w.hadamard = t.hadamard();
    Ok(w)
}

fn with_name(name: &str, e: Error) -> Error {
    Error::Unsupported(format!("GPU upload of {name}: {e}"))
}

/// Per-head matrices stacked into one weight: their bytes when every head shares an
/// unrotated row format, else their values in F16.
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
        .all(|t| t.format == first.format && t.hadamard() == 0 && !t.format.is_trellis());
    if !same {
        let mut v = Vec::with_capacity(total * cols);
        for t in heads {
            v.extend(t.to_f32()?);
        }
        return upload_f16(ctx, total, cols, &v).map_err(|e| with_name(name, e));
    }
    let bytes: Vec<u8> = heads
        .iter()
        .flat_map(|t| t.bytes().iter().copied())
        .collect();
    GpuWeight::from_bytes(ctx, first.format, total, cols, &bytes, ctx.max_binding())
        .map_err(|e| gpu_err(name, e))
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
        let r = m.kv_lora_rank;
        if !r.is_multiple_of(2) || r > MLA_MAX_RANK || r + rd > MLA_MAX_WIDTH {
            return Err(Error::Unsupported(format!(
                "GPU MLA needs an even kv_lora_rank ≤ {MLA_MAX_RANK} and kv_lora_rank + rope ≤ \
                 {MLA_MAX_WIDTH}, got {r} + {rd}"
            )));
        }
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
        let q_norm = match q_norm.is_empty() {
            true => None,
            false => Some(upload_f32(ctx, &norm_with_eps(q_norm, m.lora_norm_eps))?),
        };
        let q_fold = match q_lora > 0 && absorb::absorb_q_enabled() {
            true => absorb::upload_absorbed_q(ctx, qb, &w.k_b, (nope, rd), &name("attn_q_b"))?,
            false => None,
        };
        Ok(GpuMla {
            norms: vecs.push(&norms),
            q_norm,
            q_lora,
            a,
            q_nope: select_rows(
                ctx,
                qb,
                (0..h).map(|j| j * qk..j * qk + nope),
                &name("attn_q_b"),
            )?,
            k_b: stack_heads(ctx, &w.k_b, &name("attn_k_b"))?,
            q_fold,
            q_pe: select_rows(
                ctx,
                qb,
                (0..h).map(|j| j * qk + nope..(j + 1) * qk),
                &name("attn_q_b"),
            )?,
            v_b: stack_heads(ctx, &w.v_b, &name("attn_v_b"))?,
            head_ids: Mutex::new(None),
        })
    }

    /// Every weight matrix.
    pub(crate) fn weights(&self) -> impl Iterator<Item = &GpuWeight> {
        let rest = [&self.q_nope, &self.q_pe, &self.k_b, &self.v_b];
        self.a.parts.iter().chain(rest).chain(&self.q_fold)
    }
}
