//! Quantized matmul launcher: `out[t, r] = Σ_c W[r, c] · x[t, c]` for every weight format,
//! GEMV for one token, `gemv_multi` for a few (small-batch decode) and tiled GEMM for
//! more, one dispatch per weight chunk (two for a coop GEMM that splits K: the splits into
//! scratch, then `gemm_splitk_reduce`).

use crate::op::Op;
use crate::ops::act_q8::record_act_q8;
use crate::ops::gemm_splitk::{record_gemm_splitk_reduce, splits_within, SplitkReduceIo};
use crate::ops::gemv_hadamard::gemv_hadamard_runs;
use crate::ops::hadamard::{record_hadamard, record_hadamard_scale, ScaleSide};
use crate::ops::Span;
use crate::registry::{
    act_q8_perm, coop_splits, gemm_tile, gemm_variant_for, gemv_multi_rows, gemv_multi_tokens,
    gemv_multi_wide, gemv_rows, gemv_wide, trellis_tile_rows, KernelKey, Variant,
};
use crate::upload::{read_f32, upload_f32, zeroed_f32};
use crate::weight_trellis::TrellisSides;
use crate::{Error, GpuContext, GpuWeight, Result, StepEncoder};

/// Mirrors `Params` in shaders/common/matmul_io.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct MatmulParams {
    rows: u32,
    cols: u32,
    n_tokens: u32,
    row_offset: u32,
    out_stride: u32,
    meta_offset: u32,
    x_offset: u32,
    out_offset: u32,
}

/// Activations in and results out: f32 buffers, token-major, offsets in elements.
#[derive(Debug, Clone, Copy)]
pub struct MatmulIo<'a> {
    /// `[n_tokens, cols]` starting at `x_offset` (a multiple of 4).
    pub x: &'a wgpu::Buffer,
    pub x_offset: usize,
    /// `[n_tokens, out_stride]` starting at `out_offset`; row r of token t goes to
    /// `out_offset + t * out_stride + r`.
    pub out: &'a wgpu::Buffer,
    pub out_offset: usize,
    /// Floats between tokens in `out`; `None` = the weight's row count.
    pub out_stride: Option<usize>,
    pub n_tokens: usize,
}

impl<'a> MatmulIo<'a> {
    /// Dense input and output from offset 0.
    pub fn new(x: &'a wgpu::Buffer, out: &'a wgpu::Buffer, n_tokens: usize) -> Self {
        Self {
            x,
            x_offset: 0,
            out,
            out_offset: 0,
            out_stride: None,
            n_tokens,
        }
    }
}

fn to_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape("matmul", format!("{what} = {v} exceeds u32")))
}

/// Record `W · x` with the device's choice of op ([`GpuContext::matmul_op`]: GEMV,
/// `gemv_multi` or GEMM by token count) and its default variant.
pub fn record_matmul(enc: &mut StepEncoder<'_>, w: &GpuWeight, io: &MatmulIo<'_>) -> Result<()> {
    let op = enc.matmul_op_rows(io.n_tokens, w.rows, w.format);
    let v = enc.ctx().matmul_variant(op, w.format);
    record_matmul_op(enc, w, io, op, v)
}

/// Record `W · x` with `variant` of the device's op for `io.n_tokens`; a variant that op
/// lacks (or the device cannot run) is `Error::Unsupported`.
pub fn record_matmul_variant(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MatmulIo<'_>,
    variant: Variant,
) -> Result<()> {
    let op = enc.matmul_op_rows(io.n_tokens, w.rows, w.format);
    record_matmul_op(enc, w, io, op, variant)
}

/// Record `W · x` with kernel `op` (`Gemv`: one token; `GemvMulti`, `Gemm`: any count) and
/// `variant`; a kernel the device lacks is `Error::Unsupported`.
pub fn record_matmul_op(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MatmulIo<'_>,
    op: Op,
    variant: Variant,
) -> Result<()> {
    match op {
        Op::Gemv if io.n_tokens != 1 => {
            return Err(Error::shape(
                "matmul",
                format!("gemv computes one token, got {}", io.n_tokens),
            ))
        }
        Op::Gemv | Op::GemvMulti | Op::Gemm => {}
        _ => {
            return Err(Error::Unsupported {
                op: op.name(),
                format: w.format.name(),
            })
        }
    }
    if let Some(sides) = &w.trellis {
        return record_trellis(enc, w, sides, io, op, variant);
    }
    if w.hadamard > 0 {
        // Stored rotated (W H): rotate the input into scratch, then multiply from there.
        let n = io.n_tokens * w.cols;
        let rotated = enc.scratch(n as u64 * 4);
        record_hadamard(enc, io.x, io.x_offset, &rotated, n, w.hadamard)?;
        let io = MatmulIo {
            x: &rotated,
            x_offset: 0,
            ..*io
        };
        return record_matmul_plain(enc, w, &io, op, variant);
    }
    record_matmul_plain(enc, w, io, op, variant)
}

/// A trellis matmul, `svh ⊙ H_n(Q · H_k(suh ⊙ x))`: the input side into scratch, the
/// kernel on the tiles of Q into scratch, the output side into `io.out`; a GEMV whose
/// kernel applies the input side itself ([`gemv_hadamard_runs`]) reads `io.x` directly.
fn record_trellis(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    sides: &TrellisSides,
    io: &MatmulIo<'_>,
    op: Op,
    variant: Variant,
) -> Result<()> {
    let n = io.n_tokens;
    let yq = enc.scratch((n * w.rows) as u64 * 4);
    let fused = op == Op::Gemv
        && variant == Variant::F16
        && gemv_hadamard_runs(enc.ctx(), Op::GemvHadamard, w, sides.had_k);
    if fused {
        let q_io = MatmulIo {
            out: &yq,
            out_offset: 0,
            out_stride: None,
            ..*io
        };
        let extra = [&sides.suh];
        record_matmul_kernel(enc, w, &q_io, Op::GemvHadamard, variant, &extra, None)?;
    } else {
        let xin = enc.scratch((n * w.cols) as u64 * 4);
        let x = Span::new(io.x, io.x_offset);
        record_hadamard_scale(
            enc,
            x,
            &sides.suh,
            Span::whole(&xin),
            n,
            w.cols,
            sides.had_k,
            ScaleSide::Input,
        )?;
        let q_io = MatmulIo::new(&xin, &yq, n);
        record_matmul_plain(enc, w, &q_io, op, variant)?;
    }
    let out_stride = io.out_stride.unwrap_or(w.rows);
    let out = Span::new(io.out, io.out_offset);
    let side = ScaleSide::Output { out_stride };
    record_hadamard_scale(
        enc,
        Span::whole(&yq),
        &sides.svh,
        out,
        n,
        w.rows,
        sides.had_n,
        side,
    )
}

/// [`record_matmul_variant`] on an input that needs no rotation.
fn record_matmul_plain(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MatmulIo<'_>,
    op: Op,
    variant: Variant,
) -> Result<()> {
    record_matmul_kernel(enc, w, io, op, variant, &[], None)
}

/// Dispatch `op` per weight chunk; `extra` (at most 5) is bound from binding 4 on (the
/// fused GEMVs' norm weight, normed x, RoPE rows, step words and caches); `word2` replaces
/// the token count in the params (a one-token GEMV hook's own word: gemv_norm_rope_kv's
/// rope record).
pub(super) fn record_matmul_kernel(
    enc: &mut StepEncoder<'_>,
    w: &GpuWeight,
    io: &MatmulIo<'_>,
    op: Op,
    variant: Variant,
    extra: &[&wgpu::Buffer],
    word2: Option<u32>,
) -> Result<()> {
    let ctx = enc.ctx();
    let stride = io.out_stride.unwrap_or(w.rows);
    let n = io.n_tokens;
    if n == 0 || !io.x_offset.is_multiple_of(4) || stride < w.rows {
        return Err(Error::shape(
            "matmul",
            format!(
                "n_tokens {n} (> 0), x_offset {} (% 4 == 0), out_stride {stride} (>= {})",
                io.x_offset, w.rows
            ),
        ));
    }
    let x_need = (io.x_offset + n * w.cols) as u64 * 4;
    // gemv_norm_swiglu stores one value per gate|up row pair.
    let out_rows = if op == Op::GemvNormSwiglu {
        w.rows / 2
    } else {
        w.rows
    };
    let out_need = (io.out_offset + (n - 1) * stride + out_rows) as u64 * 4;
    for (name, need, buf) in [("x", x_need, io.x), ("out", out_need, io.out)] {
        if buf.size() < need {
            return Err(Error::shape(
                "matmul",
                format!("{name} holds {} bytes, needs {need}", buf.size()),
            ));
        }
        if buf.size() > ctx.limits.max_storage_buffer_binding_size {
            return Err(Error::TooLarge {
                what: format!("matmul {name} binding"),
                bytes: buf.size(),
                limit: ctx.limits.max_storage_buffer_binding_size,
            });
        }
    }
    to_u32(
        io.out_offset + (n - 1) * stride + w.rows,
        "last output index",
    )?;
    // The coop GEMM's token tile follows the token count (a 20-token step runs 32-token
    // tiles, not 64).
    let variant = match op {
        Op::Gemm => gemm_variant_for(variant, w.rows, n),
        Op::GemvHadamard => variant,
        op if op == Op::Gemv || op.is_fused_gemv() => gemv_wide(variant, w.format, w.rows),
        Op::GemvMulti => gemv_multi_wide(variant, w.rows, w.cols, n),
        _ => variant,
    };
    let key = KernelKey {
        op,
        format: w.format,
        variant,
    };
    // The Dp4a gemv_multi reads x quantized once, here, not in each of its workgroups.
    let q8;
    let dp4a_multi = matches!(variant, Variant::Dp4a | Variant::Dp4aWide);
    let (x, x_offset) = if op == Op::GemvMulti && dp4a_multi {
        let perm = act_q8_perm(w.format);
        q8 = record_act_q8(enc, io.x, io.x_offset, n, w.cols, perm)?;
        (&q8, 0)
    } else {
        (io.x, io.x_offset / 4)
    };
    let max_dim = ctx.limits.max_compute_workgroups_per_dimension.max(1);
    for chunk in &w.chunks {
        let rows = chunk.rows.len();
        let params = MatmulParams {
            rows: to_u32(rows, "rows")?,
            cols: to_u32(w.cols, "cols")?,
            n_tokens: word2.map_or_else(|| to_u32(n, "n_tokens"), Ok)?,
            row_offset: to_u32(chunk.rows.start, "row offset")?,
            out_stride: to_u32(stride, "out_stride")?,
            meta_offset: chunk.meta_offset_words,
            x_offset: to_u32(x_offset, "x_offset")?,
            out_offset: to_u32(io.out_offset, "out_offset")?,
        };
        let groups = match op {
            op if matches!(op, Op::Gemv | Op::GemvMulti | Op::GemvHadamard)
                || op.is_fused_gemv() =>
            {
                // gemv_multi: every (row group, pass) pair in x/y (multi_tile.wgsl).
                let (per, passes) = match op {
                    Op::GemvMulti => (
                        gemv_multi_rows(variant),
                        n.div_ceil(gemv_multi_tokens() as usize),
                    ),
                    _ if w.format.is_trellis() && variant == Variant::F16 => {
                        (trellis_tile_rows(w.cols), 1)
                    }
                    _ => (gemv_rows(w.format, variant), 1),
                };
                let g = to_u32(rows.div_ceil(per as usize) * passes, "workgroups")?;
                let gx = g.min(max_dim);
                [gx, g.div_ceil(gx), 1]
            }
            _ => {
                let (tm, tn) = gemm_tile(variant);
                [
                    to_u32(rows.div_ceil(tm as usize), "workgroups")?,
                    to_u32(n.div_ceil(tn as usize), "workgroups")?,
                    1,
                ]
            }
        };
        if groups.iter().any(|&g| g > max_dim) {
            return Err(Error::TooLarge {
                what: format!("{op} grid {groups:?}"),
                bytes: u64::from(groups[0].max(groups[1])),
                limit: u64::from(max_dim),
            });
        }
        let splits = match op {
            Op::Gemm => splits_within(
                coop_splits(variant, rows, w.cols, n).min(max_dim as usize),
                rows,
                n,
                ctx.limits.max_storage_buffer_binding_size,
            ),
            _ => 1,
        };
        if splits > 1 {
            // Split-K: the splits' partial tiles go to scratch as tokens of their own
            // (dense, from row 0), then one reduce sums them into the real output.
            let part = enc.scratch((splits * n * rows) as u64 * 4);
            let local = MatmulParams {
                row_offset: 0,
                out_stride: params.rows,
                out_offset: 0,
                ..params
            };
            let z = to_u32(splits, "splits")?;
            let bufs = [&chunk.buffer, x, &part];
            enc.dispatch(
                key,
                bytemuck::bytes_of(&local),
                &bufs,
                [groups[0], groups[1], z],
            )?;
            let reduce = SplitkReduceIo {
                partials: Span::whole(&part),
                out: Span::new(io.out, io.out_offset),
                out_stride: stride,
                row_offset: chunk.rows.start,
                rows,
                n_tokens: n,
                splits,
            };
            record_gemm_splitk_reduce(enc, &reduce)?;
            continue;
        }
        // No allocation per dispatch: `extra` (bindings 4 ..) only where the kernel has it.
        let e = |i: usize| extra.get(i).copied().unwrap_or(io.out);
        let bufs = [&chunk.buffer, x, io.out, e(0), e(1), e(2), e(3), e(4)];
        let n_bufs = 3 + extra.len().min(5);
        enc.dispatch(key, bytemuck::bytes_of(&params), &bufs[..n_bufs], groups)?;
    }
    Ok(())
}

/// Upload `x` (`[n_tokens, cols]`), run `W · x` on its own, and read the result back
/// (`[n_tokens, rows]`). For tests and tools; a forward step records into a shared encoder.
pub fn matmul(ctx: &GpuContext, w: &GpuWeight, x: &[f32], n_tokens: usize) -> Result<Vec<f32>> {
    if x.len() != n_tokens * w.cols {
        return Err(Error::shape(
            "matmul",
            format!("x has {} floats, want {n_tokens} x {}", x.len(), w.cols),
        ));
    }
    let xb = upload_f32(ctx, x)?;
    let ob = zeroed_f32(ctx, n_tokens * w.rows)?;
    let mut enc = StepEncoder::new(ctx, "matmul");
    record_matmul(&mut enc, w, &MatmulIo::new(&xb, &ob, n_tokens))?;
    enc.submit()?;
    read_f32(ctx, &ob, 0, n_tokens * w.rows)
}
