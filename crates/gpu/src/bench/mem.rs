//! Memory-bandwidth references for the kernel benchmarks: the copy command
//! (`copy_buffer_to_buffer`) and compute-shader streams (copy, read-only), the practical
//! ceiling a GEMV's weight reads compare with.

use std::time::Instant;

use super::{keep_busy, query_set, resolve_buffer, ticks_to_secs, Timer};
use crate::{Error, GpuContext, Result};

/// One copy-bandwidth measurement.
#[derive(Debug, Clone)]
pub struct CopyBench {
    /// Bytes per copy.
    pub bytes: u64,
    pub iters: u32,
    /// Microseconds per copy.
    pub us: f64,
    /// Bytes read + bytes written per second, in GB/s (the figure GEMV bandwidth compares to).
    pub gb_s: f64,
    pub timer: Timer,
}

/// Buffer-to-buffer copy bandwidth with 256 MiB buffers (smaller where the device limits),
/// 100 timed copies after a warm-up.
pub fn copy_bandwidth(ctx: &GpuContext) -> Result<CopyBench> {
    let bytes = (256u64 << 20).min(ctx.limits.max_buffer_size / 2) & !255;
    copy_bandwidth_with(ctx, bytes, 100)
}

/// Copy bandwidth with `bytes` per copy (a multiple of 4) and `iters` copies.
pub fn copy_bandwidth_with(ctx: &GpuContext, bytes: u64, iters: u32) -> Result<CopyBench> {
    if bytes == 0 || !bytes.is_multiple_of(4) || bytes > ctx.limits.max_buffer_size {
        return Err(Error::shape("copy_bandwidth", format!("{bytes} bytes")));
    }
    let iters = iters.max(1);
    let make = |usage| {
        ctx.scoped("copy_bandwidth", || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench-copy"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        })
    };
    let src = make(wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST)?;
    let dst = make(wgpu::BufferUsages::COPY_DST)?;
    let run = |n: u32, ts: Option<(&wgpu::QuerySet, &wgpu::Buffer)>| -> Result<f64> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("copy"),
            });
        if let Some((qs, _)) = ts {
            enc.write_timestamp(qs, 0);
        }
        for _ in 0..n {
            enc.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
        }
        if let Some((qs, res)) = ts {
            enc.write_timestamp(qs, 1);
            enc.resolve_query_set(qs, 0..2, res, 0);
        }
        let t0 = Instant::now();
        ctx.queue.submit([enc.finish()]);
        ctx.wait()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    // Untimed copies first: allocation, first touch and clock ramp-up stay out of the timing.
    keep_busy(ctx, || {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("copy"),
            });
        for _ in 0..iters {
            enc.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
        }
        Ok(ctx.queue.submit([enc.finish()]))
    })?;
    let inside = ctx
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);
    let (secs, timer) = if inside {
        let qs = query_set(ctx);
        let res = resolve_buffer(ctx);
        run(iters, Some((&qs, &res)))?;
        (ticks_to_secs(ctx, &res)?, Timer::Timestamp)
    } else {
        (run(iters, None)?, Timer::Wall)
    };
    let per = secs / f64::from(iters);
    Ok(CopyBench {
        bytes,
        iters,
        us: per * 1e6,
        gb_s: 2.0 * bytes as f64 / per / 1e9,
        timer,
    })
}

/// Compute-shader streaming bandwidth over one buffer of `bytes`.
#[derive(Debug, Clone)]
pub struct StreamBench {
    pub bytes: u64,
    pub iters: u32,
    /// Shader copy: bytes read + bytes written per second, in GB/s.
    pub copy_gb_s: f64,
    /// Shader read-only pass (every vec4 loaded once, nothing stored), in GB/s.
    pub read_gb_s: f64,
    pub timer: Timer,
}

/// Each thread moves 4 vec4s, `WG` apart; the stream kernels unroll by hand so they stay
/// fast under any loop-bounding setting.
const STREAM_WGSL: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
const WG: u32 = 256u;

fn ld(i: u32, n: u32) -> vec4<u32> {
    if (i < n) {
        return src[i];
    }
    return vec4<u32>(0u);
}

fn st(i: u32, n: u32, v: vec4<u32>) {
    if (i < n) {
        dst[i] = v;
    }
}

@compute @workgroup_size(256)
fn stream_copy(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let b = (wid.x + wid.y * nwg.x) * WG * 4u + lid;
    let a0 = ld(b, n);
    let a1 = ld(b + WG, n);
    let a2 = ld(b + 2u * WG, n);
    let a3 = ld(b + 3u * WG, n);
    st(b, n, a0);
    st(b + WG, n, a1);
    st(b + 2u * WG, n, a2);
    st(b + 3u * WG, n, a3);
}

@compute @workgroup_size(256)
fn stream_read(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let b = (wid.x + wid.y * nwg.x) * WG * 4u + lid;
    let s = (ld(b, n) ^ ld(b + WG, n)) ^ (ld(b + 2u * WG, n) ^ ld(b + 3u * WG, n));
    // Never true for the zeroed source; keeps the loads alive.
    if (s.x == 0x9E3779B9u) {
        dst[b] = s;
    }
}
"#;

/// Shader copy and read bandwidth with 256 MiB buffers (smaller where the device limits),
/// 100 timed dispatches of each after a warm-up.
pub fn stream_bandwidth(ctx: &GpuContext) -> Result<StreamBench> {
    let limit = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size / 2);
    stream_bandwidth_with(ctx, (256u64 << 20).min(limit) & !255, 100)
}

/// [`stream_bandwidth`] with `bytes` per buffer (a multiple of 16) and `iters` dispatches.
pub fn stream_bandwidth_with(ctx: &GpuContext, bytes: u64, iters: u32) -> Result<StreamBench> {
    let vec4s = bytes / 16;
    let groups = vec4s.div_ceil(1024);
    let max_dim = u64::from(ctx.limits.max_compute_workgroups_per_dimension.max(1));
    if bytes == 0 || !bytes.is_multiple_of(16) || groups > max_dim * max_dim {
        return Err(Error::shape("stream_bandwidth", format!("{bytes} bytes")));
    }
    let gx = groups.min(max_dim);
    let grid = [gx as u32, groups.div_ceil(gx) as u32];
    let iters = iters.max(1);
    let make = || {
        ctx.scoped("stream_bandwidth", || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench-stream"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })
    };
    let (src, dst) = (make()?, make()?);
    let module = ctx.scoped("stream_bandwidth", || {
        ctx.device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("bench-stream"),
                source: wgpu::ShaderSource::Wgsl(STREAM_WGSL.into()),
            })
    })?;
    let mut gb_s = [0.0; 2];
    let mut timer = Timer::Wall;
    for (k, entry) in ["stream_copy", "stream_read"].into_iter().enumerate() {
        let pipeline = ctx.scoped(entry, || {
            ctx.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })?;
        let bind = ctx.scoped(entry, || {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: src.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: dst.as_entire_binding(),
                    },
                ],
            })
        })?;
        let encode = |ts: Option<&wgpu::QuerySet>| {
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(entry) });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(entry),
                    timestamp_writes: ts.map(|query_set| wgpu::ComputePassTimestampWrites {
                        query_set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
                });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind, &[]);
                for _ in 0..iters {
                    pass.dispatch_workgroups(grid[0], grid[1], 1);
                }
            }
            enc
        };
        let run = |ts: Option<&wgpu::QuerySet>| -> Result<f64> {
            let mut enc = encode(ts);
            let res = ts.map(|qs| {
                let res = resolve_buffer(ctx);
                enc.resolve_query_set(qs, 0..2, &res, 0);
                res
            });
            let t0 = Instant::now();
            ctx.queue.submit([enc.finish()]);
            ctx.wait()?;
            let wall = t0.elapsed().as_secs_f64();
            match res {
                Some(r) => ticks_to_secs(ctx, &r),
                None => Ok(wall),
            }
        };
        keep_busy(ctx, || Ok(ctx.queue.submit([encode(None).finish()])))?;
        let secs = if ctx.features.timestamp_query {
            timer = Timer::Timestamp;
            run(Some(&query_set(ctx)))?
        } else {
            run(None)?
        };
        let moved = if k == 0 { 2 * bytes } else { bytes };
        gb_s[k] = moved as f64 * f64::from(iters) / secs / 1e9;
    }
    Ok(StreamBench {
        bytes,
        iters,
        copy_gb_s: gb_s[0],
        read_gb_s: gb_s[1],
        timer,
    })
}
