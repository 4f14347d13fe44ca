//! Small-batch decode benchmark: one weight times `m` activation rows through a chosen
//! matmul kernel (`gemv_multi` against the GEMM it replaces), as weight read rate and time
//! per step, so the step time against `m` shows how flat the batch curve is.

use marlin_core::QuantFormat;

use super::{synthetic_bytes, timed, Timer};
use crate::ops::matmul::{record_matmul_op, MatmulIo};
use crate::registry::Variant;
use crate::upload::{upload_f32, zeroed_f32};
use crate::{Error, GpuContext, GpuWeight, Op, Result, StepEncoder};

/// One measurement of a `[rows, cols]` weight times `tokens` activation rows.
#[derive(Debug, Clone)]
pub struct TokensBench {
    /// Kernel name, e.g. `gemv_multi_q4_0`.
    pub name: String,
    pub op: Op,
    pub variant: Variant,
    pub rows: usize,
    pub cols: usize,
    pub tokens: usize,
    /// Weight copies rotated so the working set exceeds the last-level cache.
    pub buffers: usize,
    /// Bytes one step moves: weights (GPU layout) once + x + out of every token.
    pub bytes: u64,
    /// Microseconds per step (all `tokens` rows).
    pub us: f64,
    /// `bytes / time`, in GB/s (10^9 bytes).
    pub gb_s: f64,
    pub timer: Timer,
}

/// One step to time: `tokens` activation rows through `op` (`None`: the device's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokensCase {
    pub tokens: usize,
    pub op: Option<Op>,
}

/// Time every case (each op with the device's variant for it) on one synthetic
/// `[rows, cols]` weight in `format`: `iters` timed steps per case, cycling through weight
/// copies of at least `min_working_set` bytes in all (uploaded once for all cases).
pub fn bench_tokens(
    ctx: &GpuContext,
    format: QuantFormat,
    (rows, cols): (usize, usize),
    cases: &[TokensCase],
    iters: u32,
    min_working_set: u64,
) -> Result<Vec<TokensBench>> {
    let max_tokens = cases.iter().map(|c| c.tokens).max().unwrap_or(0);
    if cases.iter().any(|c| c.tokens == 0) || max_tokens == 0 {
        return Err(Error::shape(
            "bench_tokens",
            "every case needs at least 1 token",
        ));
    }
    let iters = iters.max(1);
    let raw = synthetic_bytes(
        marlin_core::QTensor::nbytes_for(format, &[rows, cols])?,
        0x2545_F491,
    );
    let first = GpuWeight::from_bytes(ctx, format, rows, cols, &raw, ctx.max_binding())?;
    let per = first.gpu_bytes().max(1);
    let buffers = min_working_set.div_ceil(per).clamp(1, 64) as usize;
    let mut weights = vec![first];
    for _ in 1..buffers {
        weights.push(GpuWeight::from_bytes(
            ctx,
            format,
            rows,
            cols,
            &raw,
            ctx.max_binding(),
        )?);
    }
    let x = upload_f32(ctx, &vec![0.01f32; cols * max_tokens])?;
    let out = zeroed_f32(ctx, rows * max_tokens)?;
    let mut v = Vec::with_capacity(cases.len());
    for c in cases {
        let op = c.op.unwrap_or(ctx.matmul_op(c.tokens));
        let variant = ctx.matmul_variant(op, format);
        let io = MatmulIo::new(&x, &out, c.tokens);
        let record = |enc: &mut StepEncoder<'_>, n: u32| -> Result<()> {
            for i in 0..n as usize {
                record_matmul_op(enc, &weights[i % weights.len()], &io, op, variant)?;
            }
            Ok(())
        };
        let mut warm = StepEncoder::new(ctx, "bench-warmup");
        record(&mut warm, buffers as u32)?;
        warm.submit_and_wait()?;
        let (secs, timer) = timed(ctx, |enc| record(enc, iters))?;
        let bytes = per + (c.tokens * (cols + rows)) as u64 * 4;
        let secs_per = secs / f64::from(iters);
        v.push(TokensBench {
            name: crate::op::kernel_name(op, format),
            op,
            variant,
            rows,
            cols,
            tokens: c.tokens,
            buffers,
            bytes,
            us: secs_per * 1e6,
            gb_s: bytes as f64 / secs_per / 1e9,
            timer,
        });
    }
    Ok(v)
}
