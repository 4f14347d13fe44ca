//! Embedding launcher: rows of a (quantized) table for a batch of token ids, one dispatch
//! per weight chunk, times a scale (Gemma's √hidden); and `gather_rows`, the same lookup of
//! f32 rows already on the GPU.

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
/// (`gather_rows`; e.g. MoE token rows grouped by expert, or the rows of a step's hidden
/// state the LM head needs, made contiguous so the head runs once). `src` holds
/// `src_rows × cols` floats from offset 0; `cols % 4 == 0`; ids `< src_rows` (others leave
/// their row unwritten).
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
    let oo = out.check(OP, "out", n_rows * cols)?;
    if n_rows == 0 || !cols.is_multiple_of(4) || src.offset != 0 {
        return Err(Error::shape(
            OP,
            format!(
                "{n_rows} rows of {cols} (% 4 == 0), source offset {} (0)",
                src.offset
            ),
        ));
    }
    src.check(OP, "src", src_rows * cols)?;
    let io = ids.check(OP, "ids", n_rows)?;
    let n = super::to_u32(OP, "rows", n_rows)?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension.max(1);
    let gx = n.min(max);
    let params = [
        n,
        super::to_u32(OP, "cols", cols / 4)?,
        super::to_u32(OP, "source rows", src_rows)?,
        io,
        oo,
        0,
        0,
        0,
    ];
    let bufs = [src.buffer, ids.buffer, out.buffer];
    super::dispatch_op(enc, Op::GatherRows, params, &bufs, [gx, n.div_ceil(gx), 1])
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
