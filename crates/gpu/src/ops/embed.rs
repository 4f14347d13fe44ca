//! Embedding launcher: rows of a (quantized) table for a batch of token ids, one dispatch
//! per weight chunk, times a scale (Gemma's √hidden).

use super::Span;
use crate::op::Op;
use crate::registry::{KernelKey, Variant};
use crate::{Error, GpuWeight, Result, StepEncoder};

/// Record `out[t] = table[ids[t]] · scale` for `n_tokens` ids (`ids`: u32 words at a
/// multiple of 4; `out`: `n_tokens × table.cols` floats). Ids must be `< table.rows`.
pub fn record_embed(
    enc: &mut StepEncoder<'_>,
    table: &GpuWeight,
    ids: Span<'_>,
    out: Span<'_>,
    n_tokens: usize,
    scale: f32,
) -> Result<()> {
    const OP: &str = "embed";
    if n_tokens == 0 || !ids.offset.is_multiple_of(4) {
        return Err(Error::shape(
            OP,
            format!("{n_tokens} tokens, id offset {} (% 4 == 0)", ids.offset),
        ));
    }
    ids.check(OP, "ids", n_tokens)?;
    let oo = out.check(OP, "out", n_tokens * table.cols)?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let n = super::to_u32(OP, "tokens", n_tokens)?;
    if n > max {
        return Err(Error::shape(
            OP,
            format!("{n_tokens} tokens exceed the grid limit"),
        ));
    }
    let key = KernelKey {
        op: Op::Embed,
        format: table.format,
        variant: Variant::Plain,
    };
    for chunk in &table.chunks {
        // Mirrors the matmul Params: out_stride carries the scale's bits.
        let params: [u32; 8] = [
            chunk.rows.len() as u32,
            table.cols as u32,
            n,
            chunk.rows.start as u32,
            scale.to_bits(),
            chunk.meta_offset_words,
            (ids.offset / 4) as u32,
            oo,
        ];
        enc.dispatch(
            key,
            bytemuck::bytes_of(&params),
            &[&chunk.buffer, ids.buffer, out.buffer],
            [n, 1, 1],
        )?;
    }
    Ok(())
}
