//! `StepEncoder`: records many dispatches into one command encoder and (while no copy
//! intervenes) one compute pass, then submits once. Op launchers record into it; a forward
//! step shares one encoder across all its ops.
//!
//! Kernel parameters go into a uniform arena (one slot per dispatch, bound with a dynamic
//! offset) that is written with `queue.write_buffer` at submit, so it lands before the
//! step's commands run.
//!
//! With a [`BindCache`] bind groups are reused across steps, and with `submit_every` the
//! recording is submitted in chunks so the GPU starts while the host still records.

use std::sync::OnceLock;

use marlin_core::QuantFormat;

use crate::bind_cache::{self, BindCache};
use crate::pool::PooledBuffer;
use crate::registry::KernelKey;
use crate::{Error, GpuContext, Result};

/// Bytes per parameter arena buffer.
const ARENA_BYTES: u64 = 64 * 1024;

struct Arena {
    buffer: PooledBuffer,
    data: Vec<u8>,
    /// Bytes of `data` already written to `buffer`.
    sent: usize,
}

/// Dispatches per submitted chunk by default (`MARLIN_GPU_SUBMIT_EVERY`; 0: one submit).
fn default_submit_every() -> u32 {
    static V: OnceLock<u32> = OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("MARLIN_GPU_SUBMIT_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_SUBMIT_EVERY)
    })
}

/// See [`default_submit_every`]. Submitting every 64 dispatches lets the GPU start on the
/// first layers while the host records the rest (H200, 8B decode: 105 -> 112 tok/s).
const DEFAULT_SUBMIT_EVERY: u32 = 64;

/// Dispatches of a step's first chunk (at most the cadence): the GPU idles until it comes,
/// so it goes out early. Recording takes about 4 µs a dispatch on an H200 host, so 16
/// instead of 64 starts the GPU about 0.2 ms sooner in every step.
const FIRST_SUBMIT: u32 = 16;

/// Whether bind groups may be cached (`MARLIN_GPU_BIND_CACHE=0` turns it off for A/B).
fn bind_cache_enabled() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var("MARLIN_GPU_BIND_CACHE").map_or(true, |v| v != "0"))
}

/// One step's worth of recorded GPU work.
pub struct StepEncoder<'c> {
    ctx: &'c GpuContext,
    encoder: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    arenas: Vec<Arena>,
    timestamps: Option<wgpu::QuerySet>,
    cache: Option<&'c BindCache>,
    /// Per-dispatch timestamps: query 0 before the first dispatch, i + 1 after dispatch i.
    dispatch_ts: Option<(wgpu::QuerySet, u32)>,
    names: Vec<String>,
    /// Pooled buffers for intermediate results, held until submit.
    scratch: Vec<PooledBuffer>,
    submit_every: u32,
    /// Cap on the `gemv_multi` threshold for this recording (prompt steps).
    gemv_multi_cap: Option<usize>,
    since_submit: u32,
    submits: u32,
    dispatches: u32,
    passes: u32,
}

impl<'c> StepEncoder<'c> {
    /// A fresh encoder on `ctx`.
    pub fn new(ctx: &'c GpuContext, label: &str) -> Self {
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Self {
            ctx,
            encoder,
            pass: None,
            arenas: Vec::new(),
            timestamps: None,
            cache: None,
            dispatch_ts: None,
            names: Vec::new(),
            scratch: Vec::new(),
            submit_every: default_submit_every(),
            gemv_multi_cap: None,
            since_submit: 0,
            submits: 0,
            dispatches: 0,
            passes: 0,
        }
    }

    /// Reuse bind groups from `cache` (unless `MARLIN_GPU_BIND_CACHE=0`).
    pub fn with_bind_cache(mut self, cache: &'c BindCache) -> Self {
        self.cache = bind_cache_enabled().then_some(cache);
        self
    }

    /// Write a timestamp into `set` (of `count` queries) before the first dispatch and after
    /// each one, while they fit (needs `TIMESTAMP_QUERY_INSIDE_PASSES`; a profiling aid: it
    /// serialises dispatches). [`StepEncoder::dispatch_names`] names them.
    pub fn with_dispatch_timestamps(mut self, set: &wgpu::QuerySet, count: u32) -> Self {
        self.dispatch_ts = Some((set.clone(), count));
        self
    }

    /// Kernel names of the dispatches so far, when dispatch timestamps are on.
    pub fn dispatch_names(&self) -> &[String] {
        &self.names
    }

    /// Submit what is recorded every `n` dispatches, the first chunk sooner (at most 16
    /// dispatches); 0: only at [`StepEncoder::submit`].
    pub fn with_submit_every(mut self, n: u32) -> Self {
        self.submit_every = n;
        self
    }

    /// Command buffers submitted so far (chunks before the final submit).
    pub fn submit_count(&self) -> u32 {
        self.submits
    }

    /// Write the begin timestamp of the first compute pass into query 0 of `set` and the end
    /// of every pass into query 1, so 0..1 spans the whole recording (needs
    /// `TIMESTAMP_QUERY`; call before the first dispatch).
    pub fn with_timestamps(mut self, set: &wgpu::QuerySet) -> Self {
        self.timestamps = Some(set.clone());
        self
    }

    /// Run `gemv_multi` for at most `max` tokens in this recording (the context's threshold
    /// still applies): prompt steps keep the f32-activation GEMM above a few tokens.
    pub fn with_gemv_multi_cap(mut self, max: usize) -> Self {
        self.gemv_multi_cap = Some(max);
        self
    }

    /// The matmul op for `n_tokens` in this recording: the context's choice
    /// ([`GpuContext::matmul_op`]) under this encoder's cap.
    pub fn matmul_op(&self, n_tokens: usize) -> crate::Op {
        let max = self.ctx.gemv_multi_max();
        let max = self.gemv_multi_cap.map_or(max, |c| c.min(max));
        crate::registry::matmul_op_for(n_tokens, max)
    }

    /// The matmul op for `n_tokens` tokens through a `format` weight of `rows` rows:
    /// [`Self::matmul_op`], except that tall weights take the GEMM earlier
    /// ([`crate::registry::tall_gemm_op`]) where it runs on cooperative matrices (the tiled
    /// GEMM is no faster than `gemv_multi` at these token counts).
    pub fn matmul_op_rows(&self, n_tokens: usize, rows: usize, format: QuantFormat) -> crate::Op {
        let op = self.matmul_op(n_tokens);
        match self.ctx.matmul_variant(crate::Op::Gemm, format).is_coop() {
            true => crate::registry::tall_gemm_op(op, n_tokens, rows, format),
            false => op,
        }
    }

    /// The context this encoder records for.
    pub fn ctx(&self) -> &'c GpuContext {
        self.ctx
    }

    /// Dispatches recorded so far.
    pub fn dispatch_count(&self) -> u32 {
        self.dispatches
    }

    /// Compute passes opened so far (one unless copies were interleaved).
    pub fn pass_count(&self) -> u32 {
        self.passes
    }

    /// The command encoder, for copies and query resolves; ends the open compute pass
    /// (the next dispatch opens a new one, which costs tens of µs on real GPUs).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        &mut self.encoder
    }

    fn pass(&mut self) -> &mut wgpu::ComputePass<'static> {
        let first = self.passes == 0;
        let timestamp_writes =
            self.timestamps
                .as_ref()
                .map(|query_set| wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: first.then_some(0),
                    end_of_pass_write_index: Some(1),
                });
        let encoder = &mut self.encoder;
        let passes = &mut self.passes;
        self.pass.get_or_insert_with(|| {
            *passes += 1;
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("marlin-step"),
                    timestamp_writes,
                })
                .forget_lifetime()
        })
    }

    /// A storage buffer of at least `bytes` for an intermediate result of this recording,
    /// from the pool; it goes back at submit (wgpu orders later reuse after this work).
    pub fn scratch(&mut self, bytes: u64) -> wgpu::Buffer {
        let b = self.ctx.pool.get(
            bytes.max(16),
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        );
        let buf = b.buffer().clone();
        self.scratch.push(b);
        buf
    }

    /// Reserve a parameter slot holding `bytes`: (arena index, byte offset).
    fn push_params(&mut self, bytes: &[u8]) -> (usize, u32) {
        let align = u64::from(self.ctx.limits.min_uniform_buffer_offset_alignment.max(4));
        let len = bytes.len() as u64;
        let fits = |a: &Arena| (a.data.len() as u64).div_ceil(align) * align + len <= ARENA_BYTES;
        if !self.arenas.last().is_some_and(fits) {
            let buffer = self.ctx.pool.get(
                ARENA_BYTES,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            );
            self.arenas.push(Arena {
                buffer,
                data: Vec::with_capacity(ARENA_BYTES as usize),
                sent: 0,
            });
        }
        let idx = self.arenas.len() - 1;
        let a = &mut self.arenas[idx];
        let off = (a.data.len() as u64).div_ceil(align) * align;
        a.data.resize(off as usize, 0);
        a.data.extend_from_slice(bytes);
        (idx, off as u32)
    }

    /// Record one dispatch of `key` with `params` (the kernel's params struct as bytes) and
    /// the storage buffers of its layout, bound whole, in binding order.
    pub fn dispatch(
        &mut self,
        key: KernelKey,
        params: &[u8],
        storage: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<()> {
        let kernel = self.ctx.registry.kernel(self.ctx, key)?;
        let layout = kernel.spec.layout;
        if params.len() as u64 != layout.params_size() || storage.len() != layout.storage().len() {
            return Err(Error::shape(
                "dispatch",
                format!(
                    "{}: {} param bytes / {} buffers, layout wants {} / {}",
                    kernel.spec.name,
                    params.len(),
                    storage.len(),
                    layout.params_size(),
                    layout.storage().len()
                ),
            ));
        }
        let (arena, offset) = self.push_params(params);
        let pbuf = &self.arenas[arena].buffer;
        let bind_group = match self.cache {
            Some(c) => {
                let evictions = self.ctx.pool().evictions();
                c.get(&self.ctx.device, &kernel, pbuf, storage, evictions)
            }
            None => bind_cache::create(&self.ctx.device, &kernel, pbuf, storage),
        };
        let ts = self.dispatch_ts.clone();
        let first = self.dispatches;
        let pass = self.pass();
        if let Some((set, n)) = &ts {
            if first == 0 && *n > 0 {
                pass.write_timestamp(set, 0);
            }
        }
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        if let Some((set, n)) = &ts {
            if first + 1 < *n {
                pass.write_timestamp(set, first + 1);
                self.names.push(kernel.spec.name.clone());
            }
        }
        self.dispatches += 1;
        self.since_submit += 1;
        let every = match self.submits {
            0 => self.submit_every.min(FIRST_SUBMIT),
            _ => self.submit_every,
        };
        if every > 0 && self.since_submit >= every {
            self.flush()?;
        }
        Ok(())
    }

    /// Write the parameter bytes recorded since the last upload.
    fn upload_params(&mut self) {
        for a in &mut self.arenas {
            if a.data.len() > a.sent {
                // Slots start at uniform-offset alignment and params are whole u32s.
                self.ctx
                    .queue
                    .write_buffer(&a.buffer, a.sent as u64, &a.data[a.sent..]);
                a.sent = a.data.len();
            }
        }
    }

    /// End the pass and submit what is recorded so far; recording goes on in a new encoder.
    fn flush(&mut self) -> Result<()> {
        self.pass = None;
        self.upload_params();
        let fresh = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("marlin-step-chunk"),
            });
        let done = std::mem::replace(&mut self.encoder, fresh);
        self.ctx.queue.submit([done.finish()]);
        self.submits += 1;
        self.since_submit = 0;
        self.ctx.check_errors("submit")
    }

    /// End the pass, upload the parameter arenas, and submit everything recorded.
    pub fn submit(mut self) -> Result<wgpu::SubmissionIndex> {
        self.pass = None;
        self.upload_params();
        let StepEncoder {
            ctx,
            encoder,
            arenas,
            scratch,
            ..
        } = self;
        let index = ctx.queue.submit([encoder.finish()]);
        for b in scratch.into_iter().rev() {
            drop(b);
        }
        // Back to the pool last-first, so the next step takes them in the same order and
        // its cached bind groups match.
        for a in arenas.into_iter().rev() {
            drop(a);
        }
        ctx.check_errors("submit")?;
        Ok(index)
    }

    /// Submit and block until the GPU is done.
    pub fn submit_and_wait(self) -> Result<()> {
        let ctx = self.ctx;
        self.submit()?;
        ctx.wait()
    }
}
