//! `StepEncoder`: records many dispatches into one command encoder and (while no copy
//! intervenes) one compute pass, then submits once. Op launchers record into it; a forward
//! step shares one encoder across all its ops.
//!
//! Kernel parameters go into a uniform arena (one slot per dispatch, bound with a dynamic
//! offset) that is written with `queue.write_buffer` at submit, so it lands before the
//! step's commands run.

use std::num::NonZeroU64;

use crate::pool::PooledBuffer;
use crate::registry::KernelKey;
use crate::{Error, GpuContext, Result};

/// Bytes per parameter arena buffer.
const ARENA_BYTES: u64 = 64 * 1024;

struct Arena {
    buffer: PooledBuffer,
    data: Vec<u8>,
}

/// One step's worth of recorded GPU work.
pub struct StepEncoder<'c> {
    ctx: &'c GpuContext,
    encoder: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    arenas: Vec<Arena>,
    timestamps: Option<wgpu::QuerySet>,
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
            dispatches: 0,
            passes: 0,
        }
    }

    /// Write begin/end timestamps of the first compute pass into queries 0 and 1 of `set`
    /// (needs `TIMESTAMP_QUERY`; call before the first dispatch).
    pub fn with_timestamps(mut self, set: &wgpu::QuerySet) -> Self {
        self.timestamps = Some(set.clone());
        self
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
        let ts = if self.passes == 0 {
            self.timestamps.as_ref()
        } else {
            None
        };
        let timestamp_writes = ts.map(|query_set| wgpu::ComputePassTimestampWrites {
            query_set,
            beginning_of_pass_write_index: Some(0),
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
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arenas[arena].buffer,
                offset: 0,
                size: NonZeroU64::new(layout.params_size()),
            }),
        }];
        for (i, b) in storage.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&kernel.spec.name),
                layout: &kernel.bind_layout,
                entries: &entries,
            });
        let pass = self.pass();
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        self.dispatches += 1;
        Ok(())
    }

    /// End the pass, upload the parameter arenas, and submit everything recorded.
    pub fn submit(self) -> Result<wgpu::SubmissionIndex> {
        let StepEncoder {
            ctx,
            encoder,
            pass,
            arenas,
            ..
        } = self;
        drop(pass);
        for a in &arenas {
            if !a.data.is_empty() {
                ctx.queue.write_buffer(&a.buffer, 0, &a.data);
            }
        }
        let index = ctx.queue.submit([encoder.finish()]);
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
