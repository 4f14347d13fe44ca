//! Embedding launcher: rows of a (quantized) table for a batch of token ids, one dispatch
//! per weight chunk, times a scale (Gemma's √hidden); and the same lookup as a gather of
//! f32 rows already on the GPU.

use super::Span;
use crate::op::Op;
use crate::registry::{KernelKey, Variant};
use crate::{Error, GpuWeight, Result, StepEncoder};
use marlin_core::QuantFormat;

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
    let n = grid_tokens(enc, OP, n_tokens)?;
    let key = KernelKey {
        op: Op::Embed,
        format: table.format,
        variant: Variant::Plain,
    };
    for chunk in &table.chunks {
        let rows = RowSource {
            buffer: &chunk.buffer,
            first: chunk.rows.start,
            count: chunk.rows.len(),
            meta_offset_words: chunk.meta_offset_words,
        };
        dispatch_rows(enc, key, &rows, table.cols, ids, (out.buffer, oo), n, scale)?;
    }
    Ok(())
}

/// Record `out[i] = src[ids[i]]` for `n_rows` ids: a gather of rows of `cols` floats
/// (e.g. the rows of a step's hidden state the LM head needs, made contiguous so the head
/// runs once). It is the `embed_f32` lookup with `src` as the table. `src` holds
/// `src_rows × cols` floats; `cols % 4 == 0`; ids `< src_rows` (others leave their row
/// unwritten); `ids` as in [`record_embed`].
pub fn record_gather_rows(
    enc: &mut StepEncoder<'_>,
    src: Span<'_>,
    src_rows: usize,
    cols: usize,
    ids: Span<'_>,
    out: Span<'_>,
    n_rows: usize,
) -> Result<()> {
    const OP: &str = "gather_rows";
    if n_rows == 0 || !ids.offset.is_multiple_of(4) || !cols.is_multiple_of(4) || src.offset != 0 {
        return Err(Error::shape(
            OP,
            format!(
                "{n_rows} rows of {cols} (% 4 == 0), id offset {} (% 4 == 0), source offset {} (0)",
                ids.offset, src.offset
            ),
        ));
    }
    src.check(OP, "src", src_rows * cols)?;
    ids.check(OP, "ids", n_rows)?;
    let oo = out.check(OP, "out", n_rows * cols)?;
    let n = grid_tokens(enc, OP, n_rows)?;
    let key = KernelKey {
        op: Op::Embed,
        format: QuantFormat::F32,
        variant: Variant::Plain,
    };
    let rows = RowSource {
        buffer: src.buffer,
        first: 0,
        count: src_rows,
        meta_offset_words: 0,
    };
    dispatch_rows(enc, key, &rows, cols, ids, (out.buffer, oo), n, 1.0)
}

/// Rows `first .. first + count` of a table, held by `buffer`.
struct RowSource<'a> {
    buffer: &'a wgpu::Buffer,
    first: usize,
    count: usize,
    meta_offset_words: u32,
}

/// `n` (≤ the grid limit) as u32.
fn grid_tokens(enc: &StepEncoder<'_>, op: &'static str, n: usize) -> Result<u32> {
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    let n32 = super::to_u32(op, "tokens", n)?;
    if n32 > max {
        return Err(Error::shape(op, format!("{n} rows exceed the grid limit")));
    }
    Ok(n32)
}

/// One embed dispatch: workgroup t looks up id t in `rows`.
#[allow(clippy::too_many_arguments)]
fn dispatch_rows(
    enc: &mut StepEncoder<'_>,
    key: KernelKey,
    rows: &RowSource<'_>,
    cols: usize,
    ids: Span<'_>,
    (out, out_offset): (&wgpu::Buffer, u32),
    n: u32,
    scale: f32,
) -> Result<()> {
    // Mirrors the matmul Params: out_stride carries the scale's bits.
    let params: [u32; 8] = [
        rows.count as u32,
        cols as u32,
        n,
        rows.first as u32,
        scale.to_bits(),
        rows.meta_offset_words,
        (ids.offset / 4) as u32,
        out_offset,
    ];
    enc.dispatch(
        key,
        bytemuck::bytes_of(&params),
        &[rows.buffer, ids.buffer, out],
        [n, 1, 1],
    )
}
