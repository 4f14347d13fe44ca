//! `attn_mla` of a prompt chunk as two GEMMs: every query of the chunk against its
//! sequence's latent rows made dense (`mla_q_pack`, `mla_kv_dense`), scores on the matmul
//! kernels (tensor cores where the device has them), `mla_softmax`, and the values on the
//! matmul kernels again. All heads share one latent row per position, so a chunk's
//! attention is a `(tokens · heads) × positions` GEMM pair, where the per-query `attn_mla`
//! kernel reloads every row once per token.

use marlin_core::QuantFormat;

use super::attn_mla::{MlaAttnIo, MlaShape};
use super::matmul::{record_matmul, MatmulIo};
use super::{dispatch_op, grid, to_u32, wg};
use crate::op::Op;
use crate::{Error, GpuWeight, Result, StepEncoder};

/// Positions are padded to a multiple of this (whole GEMM tiles along K).
pub const MLA_GEMM_KEY_ALIGN: usize = 64;
/// Largest score matrix (`tokens · heads × padded positions` f32) the GEMM form builds at
/// once: longer chunks run their query rows in blocks that fit it.
pub const MLA_GEMM_MAX_SCORE_BYTES: u64 = 256 << 20;

/// Positions the GEMM form covers for `max_keys` keys.
fn padded_keys(max_keys: usize) -> usize {
    max_keys.div_ceil(MLA_GEMM_KEY_ALIGN).max(1) * MLA_GEMM_KEY_ALIGN
}

/// Query rows (whole tokens: multiples of the head count) per score block of `s` over
/// `n_pad` positions: as many as fit one binding and [`MLA_GEMM_MAX_SCORE_BYTES`] (0: not
/// even one token's).
fn block_rows(enc: &StepEncoder<'_>, s: &MlaShape, n_pad: usize, max_bytes: u64) -> usize {
    let limit = max_bytes.min(enc.ctx().limits.max_storage_buffer_binding_size);
    let tokens = (limit / (s.n_heads * n_pad * 4).max(1) as u64) as usize;
    tokens.min(s.n_tokens) * s.n_heads
}

/// Whether [`record_attn_mla_gemm`] can run `s` over `max_keys` positions on this device:
/// latent rows of whole vec4s (the GEMMs read them so), one token's scores within a block,
/// and the dense keys within one binding.
pub fn mla_gemm_fits(enc: &StepEncoder<'_>, s: &MlaShape, max_keys: usize) -> bool {
    let n_pad = padded_keys(max_keys);
    let keys = (n_pad * s.width() * 2) as u64;
    s.width().is_multiple_of(4)
        && block_rows(enc, s, n_pad, MLA_GEMM_MAX_SCORE_BYTES) > 0
        && keys <= enc.ctx().limits.max_storage_buffer_binding_size
}

/// Record the absorbed MLA attention of `s.n_tokens` query tokens of **one sequence** (every
/// token's metadata names the same block table; the keys are that sequence's positions
/// `0..max_keys`, all written) as GEMMs: the same result as [`super::attn_mla::record_attn_mla`]
/// with one split, up to the GEMM's rounding (the tensor-core GEMM multiplies in f16).
/// `io.part` is not used. Two dispatches, then three per block of query rows (one block
/// unless the scores exceed [`MLA_GEMM_MAX_SCORE_BYTES`]; more where a GEMM splits K).
pub fn record_attn_mla_gemm(
    enc: &mut StepEncoder<'_>,
    s: &MlaShape,
    max_keys: usize,
    io: &MlaAttnIo<'_>,
) -> Result<()> {
    record_attn_mla_gemm_blocks(enc, s, max_keys, io, MLA_GEMM_MAX_SCORE_BYTES)
}

/// [`record_attn_mla_gemm`] with score blocks of at most `max_score_bytes` (tests use small
/// values to run many blocks).
pub fn record_attn_mla_gemm_blocks(
    enc: &mut StepEncoder<'_>,
    s: &MlaShape,
    max_keys: usize,
    io: &MlaAttnIo<'_>,
    max_score_bytes: u64,
) -> Result<()> {
    const OP: &str = "attn_mla_gemm";
    s.check(OP)?;
    let n_pad = padded_keys(max_keys);
    let block = block_rows(enc, s, n_pad, max_score_bytes);
    if max_keys == 0 || block == 0 || !mla_gemm_fits(enc, s, max_keys) {
        return Err(Error::shape(
            OP,
            format!(
                "{max_keys} keys for {} tokens x {} heads: need keys > 0, one token's scores \
                 within {max_score_bytes} bytes and the keys within one binding",
                s.n_tokens, s.n_heads
            ),
        ));
    }
    let (n, h, r, w) = (s.n_tokens, s.n_heads, s.rank, s.width());
    let rows = n * h;
    super::Span::whole(io.q_abs).check(OP, "q_abs", rows * r)?;
    super::Span::whole(io.q_pe).check(OP, "q_pe", rows * s.rope_dim)?;
    let co = io.cs.check(OP, "cs", n * s.rope_dim)?;
    let mo = io.meta.check(OP, "meta", 2 * n)?;
    let oo = io.out.check(OP, "out", rows * r)?;
    let rows32 = to_u32(OP, "query rows", rows)?;

    let qd = enc.scratch((rows * w) as u64 * 4);
    let params = [
        h as u32,
        r as u32,
        s.rope_word(),
        s.scale.to_bits(),
        rows32,
        co,
        0,
        0,
    ];
    let bufs = [io.q_abs, io.q_pe, io.cs.buffer, &qd];
    let g = grid(enc, OP, rows * w, wg(Op::MlaQPack))?;
    dispatch_op(enc, Op::MlaQPack, params, &bufs, g)?;

    let kd = enc.scratch(GpuWeight::raw_bytes(QuantFormat::F16, n_pad, w)?);
    let vt = enc.scratch(GpuWeight::raw_bytes(QuantFormat::F16, r, n_pad)?);
    let params = [
        (w / 2) as u32,
        r as u32,
        to_u32(OP, "keys", max_keys)?,
        to_u32(OP, "padded keys", n_pad)?,
        mo,
        0,
        0,
        0,
    ];
    let bufs = [io.cache, io.meta.buffer, &kd, &vt];
    let g = grid(enc, OP, n_pad / 2 * w / 2, wg(Op::MlaKvDense))?;
    dispatch_op(enc, Op::MlaKvDense, params, &bufs, g)?;

    let keys = GpuWeight::raw_view(QuantFormat::F16, n_pad, w, &kd)?;
    let values = GpuWeight::raw_view(QuantFormat::F16, r, n_pad, &vt)?;
    // One score buffer for every block: each block's writes wait for the previous block's
    // reads (the pass orders dispatches that share a buffer).
    let scores = enc.scratch((block.min(rows) * n_pad) as u64 * 4);
    for q0 in (0..rows).step_by(block.max(1)) {
        let nb = block.min(rows - q0);
        let io_s = MatmulIo {
            x_offset: q0 * w,
            ..MatmulIo::new(&qd, &scores, nb)
        };
        record_matmul(enc, &keys, &io_s)?;
        let params = [h as u32, n_pad as u32, mo, nb as u32, q0 as u32, 0, 0, 0];
        let g = grid(
            enc,
            OP,
            nb * wg(Op::MlaSoftmax) as usize,
            wg(Op::MlaSoftmax),
        )?;
        dispatch_op(enc, Op::MlaSoftmax, params, &[io.meta.buffer, &scores], g)?;
        let io_o = MatmulIo {
            out_offset: oo as usize + q0 * r,
            ..MatmulIo::new(&scores, io.out.buffer, nb)
        };
        record_matmul(enc, &values, &io_o)?;
    }
    Ok(())
}
