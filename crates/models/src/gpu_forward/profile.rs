//! `MARLIN_GPU_PROFILE=1`: a per-step timing line on stderr — host µs of each phase
//! (prepare, record, submit, read-back) and the GPU's own span of the step from pass
//! timestamps (first pass begin to last pass end) where the device has them.
//! `MARLIN_GPU_PROFILE=2` adds a `gpu-kernels` line: GPU µs per kernel name (count:name)
//! from timestamps between dispatches, which serialise the step a little.

use std::sync::OnceLock;
use std::time::Instant;

use marlin_gpu::wgpu;
use marlin_gpu::{read_bytes, GpuContext, StepEncoder};

/// `MARLIN_GPU_PROFILE` (0 when unset or not a number; read once).
fn level() -> u8 {
    static V: OnceLock<u8> = OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("MARLIN_GPU_PROFILE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Dispatch timestamps kept per step at level 2.
const KERNEL_QUERIES: u32 = 2048;

fn queries(ctx: &GpuContext, count: u32) -> (wgpu::QuerySet, wgpu::Buffer) {
    let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("step-profile"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("step-profile"),
        size: u64::from(count) * 8,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    (set, buf)
}

fn read_ticks(ctx: &GpuContext, buf: &wgpu::Buffer, n: u32) -> Option<Vec<f64>> {
    let raw = read_bytes(ctx, buf, 0, u64::from(n) * 8).ok()?;
    let period = f64::from(ctx.queue.get_timestamp_period());
    let t: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
    Some(t.iter().map(|&x| x as f64 * period * 1e-3).collect())
}

/// Phase marks of one step, and its timestamp queries.
pub(super) struct Profile {
    last: Instant,
    phases: Vec<(&'static str, f64)>,
    ts: Option<(wgpu::QuerySet, wgpu::Buffer)>,
    kernels: Option<(wgpu::QuerySet, wgpu::Buffer)>,
    names: Vec<String>,
}

impl Profile {
    /// A profile of the step starting now, when profiling is on.
    pub(super) fn start(ctx: &GpuContext) -> Option<Profile> {
        if level() == 0 {
            return None;
        }
        let ts = ctx.features.timestamp_query.then(|| queries(ctx, 2));
        let inside = wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let kernels = (level() >= 2 && ctx.device.features().contains(inside))
            .then(|| queries(ctx, KERNEL_QUERIES));
        Some(Profile {
            last: Instant::now(),
            phases: Vec::new(),
            ts,
            kernels,
            names: Vec::new(),
        })
    }

    /// Close the phase `name` (time since the previous mark).
    pub(super) fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases
            .push((name, (now - self.last).as_secs_f64() * 1e6));
        self.last = now;
    }

    /// `enc` writing this step's pass timestamps.
    pub(super) fn attach<'c>(&self, enc: StepEncoder<'c>) -> StepEncoder<'c> {
        let enc = match &self.kernels {
            Some((set, _)) => enc.with_dispatch_timestamps(set, KERNEL_QUERIES),
            None => enc,
        };
        match &self.ts {
            Some((set, _)) => enc.with_timestamps(set),
            None => enc,
        }
    }

    /// Record the timestamp resolve (after the step's last dispatch).
    pub(super) fn resolve(&mut self, enc: &mut StepEncoder<'_>) {
        self.names = enc.dispatch_names().to_vec();
        if let Some((set, buf)) = &self.ts {
            enc.encoder().resolve_query_set(set, 0..2, buf, 0);
        }
        if let Some((set, buf)) = &self.kernels {
            let n = self.names.len() as u32 + 1;
            enc.encoder().resolve_query_set(set, 0..n, buf, 0);
        }
    }

    /// `gpu-kernels` line: µs per `count:kernel`, largest first.
    fn kernel_line(&self, ctx: &GpuContext, n: usize) -> Option<String> {
        let (_, buf) = self.kernels.as_ref()?;
        let t = read_ticks(ctx, buf, self.names.len() as u32 + 1)?;
        let mut by: Vec<(String, usize, f64)> = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            let us = (t[i + 1] - t[i]).max(0.0);
            match by.iter_mut().find(|e| &e.0 == name) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += us;
                }
                None => by.push((name.clone(), 1, us)),
            }
        }
        by.sort_by(|a, b| b.2.total_cmp(&a.2));
        let mut line = format!("gpu-kernels n={n}");
        for (name, count, us) in by {
            line.push_str(&format!(" {count}:{name}={us:.0}"));
        }
        Some(line)
    }

    /// Print the step's line: `n` tokens, `dispatches`, `submits` command buffers.
    pub(super) fn report(self, ctx: &GpuContext, n: usize, dispatches: u32, submits: u32) {
        let gpu = self.ts.as_ref().and_then(|(_, buf)| {
            let t = read_ticks(ctx, buf, 2)?;
            Some((t[1] - t[0]).max(0.0))
        });
        if let Some(l) = self.kernel_line(ctx, n) {
            eprintln!("{l} (µs)");
        }
        let total: f64 = self.phases.iter().map(|p| p.1).sum();
        let mut line = format!("gpu-profile n={n} dispatches={dispatches} submits={submits}");
        for (name, us) in &self.phases {
            line.push_str(&format!(" {name}={us:.0}"));
        }
        line.push_str(&format!(" host_total={total:.0}"));
        if let Some(g) = gpu {
            line.push_str(&format!(" gpu={g:.0}"));
        }
        eprintln!("{line} (µs)");
    }
}
