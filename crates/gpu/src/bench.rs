//! Kernel benchmarks for `metal-marlin bench kernels`: GEMV bandwidth and GEMM TFLOP/s on
//! synthetic weights, and buffer-to-buffer copy bandwidth, the device's practical memory limit.

use std::time::Instant;

use marlin_core::QuantFormat;

use crate::ops::matmul::{record_matmul_op, record_matmul_variant, MatmulIo};
use crate::registry::Variant;
use crate::upload::{read_bytes, upload_f32, zeroed_f32};
use crate::{Error, GpuContext, GpuWeight, Result, StepEncoder};

mod mem;
mod tokens;
pub use mem::{
    copy_bandwidth, copy_bandwidth_with, stream_bandwidth, stream_bandwidth_with, CopyBench,
    StreamBench,
};
pub use tokens::{bench_tokens, TokensBench, TokensCase};

/// How a time was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// GPU timestamps around the compute pass (or the copies).
    Timestamp,
    /// Host wall time from submit to completion (includes submit overhead).
    Wall,
}

/// One GEMV measurement.
#[derive(Debug, Clone)]
pub struct GemvBench {
    /// Kernel name, e.g. `gemv_q4_0`.
    pub name: String,
    pub variant: Variant,
    pub rows: usize,
    pub cols: usize,
    /// Weight copies rotated so the working set exceeds the last-level cache.
    pub buffers: usize,
    /// Bytes one GEMV moves: weights (GPU layout) + x + out.
    pub bytes: u64,
    /// Microseconds per GEMV.
    pub us: f64,
    /// `bytes / time`, in GB/s (10^9 bytes).
    pub gb_s: f64,
    pub timer: Timer,
}

/// Options for [`bench_gemv_with`].
#[derive(Debug, Clone, Copy)]
pub struct BenchOpts {
    /// Timed GEMVs.
    pub iters: u32,
    /// Minimum bytes of distinct weights the timed loop cycles through.
    pub min_working_set: u64,
    /// GEMV variant; `None` = the device default.
    pub variant: Option<Variant>,
}

impl Default for BenchOpts {
    fn default() -> Self {
        Self {
            iters: 100,
            min_working_set: 256 << 20,
            variant: None,
        }
    }
}

/// Random-looking bytes whose every 16/32-bit float field is finite and small: each byte
/// is at most 0x3B, so no exponent field is all ones.
fn synthetic_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8 & 0x3B
        })
        .collect()
}

/// GEMV throughput for a `[rows, cols]` weight in `format` (default options, `iters` runs).
pub fn bench_gemv(
    ctx: &GpuContext,
    format: QuantFormat,
    rows: usize,
    cols: usize,
    iters: u32,
) -> Result<GemvBench> {
    bench_gemv_with(
        ctx,
        format,
        rows,
        cols,
        &BenchOpts {
            iters,
            ..BenchOpts::default()
        },
    )
}

/// GEMV throughput with explicit options.
pub fn bench_gemv_with(
    ctx: &GpuContext,
    format: QuantFormat,
    rows: usize,
    cols: usize,
    opts: &BenchOpts,
) -> Result<GemvBench> {
    let iters = opts.iters.max(1);
    let variant = opts
        .variant
        .unwrap_or(ctx.matmul_variant(crate::Op::Gemv, format));
    let raw = synthetic_bytes(
        marlin_core::QTensor::nbytes_for(format, &[rows, cols])?,
        0x9E37_79B9,
    );
    let first = GpuWeight::from_bytes(ctx, format, rows, cols, &raw, ctx.max_binding())?;
    let per = first.gpu_bytes().max(1);
    let buffers = opts.min_working_set.div_ceil(per).clamp(1, 64) as usize;
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
    let x = upload_f32(ctx, &vec![0.01f32; cols])?;
    // One output per weight copy lets consecutive GEMVs overlap (no write-after-write
    // barrier): throughput without the per-dispatch drain a dependent chain pays.
    let independent = std::env::var_os("MARLIN_BENCH_INDEPENDENT").is_some();
    let outs = (0..if independent { buffers } else { 1 })
        .map(|_| zeroed_f32(ctx, rows))
        .collect::<Result<Vec<_>>>()?;
    let record = |enc: &mut StepEncoder<'_>, n: u32| -> Result<()> {
        for i in 0..n as usize {
            let io = MatmulIo::new(&x, &outs[i % outs.len()], 1);
            record_matmul_variant(enc, &weights[i % weights.len()], &io, variant)?;
        }
        Ok(())
    };
    // Compiles the pipeline and touches every buffer once (timed() warms the clocks).
    let mut warm = StepEncoder::new(ctx, "bench-warmup");
    record(&mut warm, buffers as u32)?;
    warm.submit_and_wait()?;
    let (secs, timer) = timed(ctx, |enc| record(enc, iters))?;
    let bytes = per + (cols as u64 + rows as u64) * 4;
    let secs_per = secs / f64::from(iters);
    Ok(GemvBench {
        name: crate::op::kernel_name(crate::Op::Gemv, format),
        variant,
        rows,
        cols,
        buffers,
        bytes,
        us: secs_per * 1e6,
        gb_s: bytes as f64 / secs_per / 1e9,
        timer,
    })
}

/// One GEMM measurement (prefill shape: `tokens` activation rows).
#[derive(Debug, Clone)]
pub struct GemmBench {
    /// Kernel name, e.g. `gemm_q4_0`.
    pub name: String,
    pub variant: Variant,
    pub rows: usize,
    pub cols: usize,
    pub tokens: usize,
    /// Microseconds per GEMM.
    pub us: f64,
    /// `2 · rows · cols · tokens / time`, in TFLOP/s.
    pub tflop_s: f64,
    pub timer: Timer,
}

/// GEMM throughput for a `[rows, cols]` weight in `format` times `tokens` activation rows,
/// with the device's default GEMM variant, averaged over `iters` runs after a warm-up.
pub fn bench_gemm(
    ctx: &GpuContext,
    format: QuantFormat,
    rows: usize,
    cols: usize,
    tokens: usize,
    iters: u32,
) -> Result<GemmBench> {
    if tokens < 2 {
        return Err(Error::shape(
            "bench_gemm",
            format!("{tokens} tokens (need ≥ 2)"),
        ));
    }
    let iters = iters.max(1);
    let variant = ctx.default_variant(crate::Op::Gemm);
    let raw = synthetic_bytes(
        marlin_core::QTensor::nbytes_for(format, &[rows, cols])?,
        0x7F4A_7C15,
    );
    let w = GpuWeight::from_bytes(ctx, format, rows, cols, &raw, ctx.max_binding())?;
    let x = upload_f32(ctx, &vec![0.01f32; cols * tokens])?;
    let out = zeroed_f32(ctx, rows * tokens)?;
    let io = MatmulIo::new(&x, &out, tokens);
    let record = |enc: &mut StepEncoder<'_>, n: u32| -> Result<()> {
        for _ in 0..n {
            record_matmul_op(enc, &w, &io, crate::Op::Gemm, variant)?;
        }
        Ok(())
    };
    let mut warm = StepEncoder::new(ctx, "bench-warmup");
    record(&mut warm, 1)?;
    warm.submit_and_wait()?;
    let (secs, timer) = timed(ctx, |enc| record(enc, iters))?;
    let secs_per = secs / f64::from(iters);
    let flops = 2.0 * rows as f64 * cols as f64 * tokens as f64;
    Ok(GemmBench {
        name: crate::op::kernel_name(crate::Op::Gemm, format),
        variant,
        rows,
        cols,
        tokens,
        us: secs_per * 1e6,
        tflop_s: flops / secs_per / 1e12,
        timer,
    })
}

/// Seconds of back-to-back GPU work before a timed batch. GPUs drop to idle clocks between
/// benchmarks (an H100 sat at 345 MHz), and a few milliseconds of warm-up left kernels
/// measured 2-4x slow depending on what ran before.
const WARM_SECS: f64 = 0.25;

/// Submit batches from `submit_one` back to back (at most two in flight) for [`WARM_SECS`];
/// the last is still running on return, so a batch submitted next starts on a busy GPU.
fn keep_busy(
    ctx: &GpuContext,
    mut submit_one: impl FnMut() -> Result<wgpu::SubmissionIndex>,
) -> Result<()> {
    let t0 = Instant::now();
    let mut prev: Option<wgpu::SubmissionIndex> = None;
    loop {
        let idx = submit_one()?;
        if let Some(p) = prev.replace(idx) {
            ctx.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(p),
                    timeout: None,
                })
                .map_err(|e| Error::Poll(e.to_string()))?;
        }
        if t0.elapsed().as_secs_f64() >= WARM_SECS {
            return Ok(());
        }
    }
}

/// Run what `record` records in one encoder after [`keep_busy`] warm-up with the same
/// work; seconds from first to last dispatch.
fn timed(
    ctx: &GpuContext,
    record: impl Fn(&mut StepEncoder<'_>) -> Result<()>,
) -> Result<(f64, Timer)> {
    keep_busy(ctx, || {
        let mut enc = StepEncoder::new(ctx, "bench-warm");
        record(&mut enc)?;
        enc.submit()
    })?;
    if !ctx.features.timestamp_query {
        ctx.wait()?;
        let mut enc = StepEncoder::new(ctx, "bench");
        record(&mut enc)?;
        let t0 = Instant::now();
        enc.submit_and_wait()?;
        return Ok((t0.elapsed().as_secs_f64(), Timer::Wall));
    }
    let qs = query_set(ctx);
    let resolve = resolve_buffer(ctx);
    let mut enc = StepEncoder::new(ctx, "bench").with_timestamps(&qs);
    record(&mut enc)?;
    enc.encoder().resolve_query_set(&qs, 0..2, &resolve, 0);
    enc.submit_and_wait()?;
    Ok((ticks_to_secs(ctx, &resolve)?, Timer::Timestamp))
}

fn query_set(ctx: &GpuContext) -> wgpu::QuerySet {
    ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("bench"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    })
}

fn resolve_buffer(ctx: &GpuContext) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench-resolve"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

fn ticks_to_secs(ctx: &GpuContext, resolve: &wgpu::Buffer) -> Result<f64> {
    let raw = read_bytes(ctx, resolve, 0, 16)?;
    let t: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
    let (begin, end) = (
        t.first().copied().unwrap_or(0),
        t.get(1).copied().unwrap_or(0),
    );
    if end <= begin {
        return Err(Error::Poll(format!(
            "timestamps not increasing: {begin} → {end}"
        )));
    }
    Ok((end - begin) as f64 * f64::from(ctx.queue.get_timestamp_period()) * 1e-9)
}
