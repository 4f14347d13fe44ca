//! The per-device pipeline cache: kernels compiled on first use from their registry spec,
//! with explicit bind-group layouts shared per layout kind.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, RwLock};

use crate::op::Op;
use crate::registry::{spec, BindLayout, KernelKey, KernelSpec};
use crate::{Error, GpuContext, Result};

/// naga's default wraps every loop in a 64-bit trip counter (`force_loop_bounding`), which
/// stops NVIDIA's compiler from unrolling loops and scalarising small arrays: our GEMVs ran
/// ~20x slower with it (wgpu issue #7698). `MARLIN_GPU_LOOP_BOUNDING=1` restores it (A/B).
/// naga's index clamping (`bounds_checks`) is off too, except in the one-token GEMVs: every
/// launcher validates its shapes and buffer sizes before recording, and out-of-range buffer
/// accesses stay defined where the driver has robust buffer access (naga then skips buffer
/// clamps anyway). Without the clamps on workgroup and local arrays, prompt steps ran 13%
/// faster (Llama-3-8B q4_0, 512 tokens, H100: 5,782 -> 6,547 tok/s) and GLM-4.7-Flash
/// decoded 4% faster, but the dense decode GEMVs lost ~1% (314 -> 310 tok/s), so they keep
/// them. `MARLIN_GPU_BOUNDS_CHECKS=1` (or `0`) turns them on (off) for every kernel; a
/// comma-separated list of op names (`attn_paged,argmax`) adds those ops to the default set.
fn runtime_checks(op: Op) -> wgpu::ShaderRuntimeChecks {
    let var = |name: &str| std::env::var(name).ok();
    let default = op == Op::Gemv || op.is_fused_gemv();
    let bounds = match var("MARLIN_GPU_BOUNDS_CHECKS").as_deref() {
        Some("1") => true,
        Some("0") => false,
        Some(list) => default || list.split(',').any(|n| n.trim() == op.name()),
        None => default,
    };
    wgpu::ShaderRuntimeChecks {
        force_loop_bounding: var("MARLIN_GPU_LOOP_BOUNDING").is_some_and(|v| v == "1"),
        bounds_checks: bounds,
        ..wgpu::ShaderRuntimeChecks::checked()
    }
}

/// A compiled kernel.
pub struct Kernel {
    pub spec: KernelSpec,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_layout: wgpu::BindGroupLayout,
}

/// Compiled pipelines and bind-group layouts of one device.
#[derive(Default)]
pub(crate) struct Registry {
    kernels: RwLock<HashMap<KernelKey, Arc<Kernel>>>,
    layouts: RwLock<HashMap<BindLayout, wgpu::BindGroupLayout>>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn compiled(&self) -> usize {
        self.kernels.read().map(|k| k.len()).unwrap_or(0)
    }

    fn layout(&self, ctx: &GpuContext, kind: BindLayout) -> Result<wgpu::BindGroupLayout> {
        if let Some(l) = self.layouts.read().ok().and_then(|m| m.get(&kind).cloned()) {
            return Ok(l);
        }
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: NonZeroU64::new(kind.params_size()),
            },
            count: None,
        }];
        for (i, &read_only) in kind.storage().iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let label = format!("{kind:?}");
        let l = ctx.scoped(&label, || {
            ctx.device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&label),
                    entries: &entries,
                })
        })?;
        if let Ok(mut m) = self.layouts.write() {
            m.insert(kind, l.clone());
        }
        Ok(l)
    }

    /// The compiled kernel for `key`, compiling it on first use.
    pub(crate) fn kernel(&self, ctx: &GpuContext, key: KernelKey) -> Result<Arc<Kernel>> {
        if let Some(k) = self.kernels.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(k);
        }
        let unsupported = || Error::Unsupported {
            op: key.op.name(),
            format: key.format.name(),
        };
        let spec = spec(key).ok_or_else(unsupported)?;
        if !ctx.device.features().contains(spec.features) {
            return Err(unsupported());
        }
        let source = spec.source()?;
        let bind_layout = self.layout(ctx, spec.layout)?;
        let pipeline = ctx.scoped(&spec.name, || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(&spec.name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            // SAFETY: every loop in our own shaders has a finite trip count (what dropping
            // loop bounding requires), and every index stays in range for the shapes the
            // launchers accept (what dropping bounds checks requires; the parity harness's
            // guard regions check the writes).
            let module = unsafe {
                ctx.device
                    .create_shader_module_trusted(desc, runtime_checks(key.op))
            };
            let layout = ctx
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(&spec.name),
                    bind_group_layouts: &[Some(&bind_layout)],
                    immediate_size: 0,
                });
            ctx.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&spec.name),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some(&spec.name),
                    // Every kernel writes its workgroup memory before reading it.
                    compilation_options: wgpu::PipelineCompilationOptions {
                        zero_initialize_workgroup_memory: false,
                        ..Default::default()
                    },
                    cache: None,
                })
        })?;
        let k = Arc::new(Kernel {
            spec,
            pipeline,
            bind_layout,
        });
        if let Ok(mut m) = self.kernels.write() {
            m.insert(key, Arc::clone(&k));
        }
        Ok(k)
    }
}
