//! Kernel registry: (op, format, variant) → WGSL parts, entry point, geometry, bind layout.
//! Pipelines are compiled on first use and cached; bind-group layouts are explicit.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, RwLock};

use marlin_core::QuantFormat;

use crate::op::{kernel_name, Op};
use crate::shaders::shader_source;
use crate::{Error, GpuContext, Result};

/// Threads per workgroup of the GEMV kernels (`WG` in gemv_body.wgsl).
pub const GEMV_WG: u32 = 64;
/// Rows per GEMV workgroup (`NR`).
pub const GEMV_ROWS: u32 = 4;
/// Threads per workgroup of the GEMM kernels (`WG` in gemm_body.wgsl).
pub const GEMM_WG: u32 = 64;
/// Rows per GEMM workgroup (`TM`).
pub const GEMM_ROWS: u32 = 64;
/// Tokens per GEMM workgroup (`TN`).
pub const GEMM_TOKENS: u32 = 16;

/// A feature-dependent flavour of a kernel. `Plain` always exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// No optional features: reductions in workgroup memory.
    Plain,
    /// Reductions with `subgroupAdd` (device feature `SUBGROUP`).
    Subgroup,
    /// f16 workgroup tiles and products, f32 accumulation (device feature `SHADER_F16`).
    F16,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 3] = [Variant::Plain, Variant::Subgroup, Variant::F16];

    /// Stable name for logs and bench lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Subgroup => "subgroup",
            Variant::F16 => "f16",
        }
    }
}

/// Registry key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelKey {
    pub op: Op,
    pub format: QuantFormat,
    pub variant: Variant,
}

/// Bind-group layouts shared by kernel families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindLayout {
    /// 0: params uniform (dynamic offset), 1: weights (read), 2: x (read), 3: out (read_write).
    Matmul,
}

impl BindLayout {
    /// Byte size of the params struct bound at binding 0.
    pub fn params_size(self) -> u64 {
        match self {
            BindLayout::Matmul => 32,
        }
    }

    /// Storage bindings after the params: `true` = read-only.
    pub fn storage(self) -> &'static [bool] {
        match self {
            BindLayout::Matmul => &[true, true, false],
        }
    }
}

/// Everything needed to build one kernel's pipeline.
#[derive(Debug, Clone)]
pub struct KernelSpec {
    pub key: KernelKey,
    /// Kernel name = entry point = the last part's file stem.
    pub name: String,
    /// Shader files (under `src/shaders/`) concatenated in this order.
    pub parts: Vec<String>,
    pub workgroup_size: u32,
    /// Output rows one workgroup covers.
    pub rows_per_group: u32,
    /// Tokens one workgroup covers.
    pub tokens_per_group: u32,
    pub layout: BindLayout,
    /// Device features the kernel needs.
    pub features: wgpu::Features,
}

impl KernelSpec {
    /// The full WGSL module text.
    pub fn source(&self) -> Result<String> {
        let mut s = String::new();
        for part in &self.parts {
            let src = shader_source(part).ok_or_else(|| Error::MissingShader(part.clone()))?;
            s.push_str(&format!("// ---- {part}\n"));
            s.push_str(src);
            s.push('\n');
        }
        Ok(s)
    }
}

/// Format-decoding files for `format` (shared helpers first).
fn format_parts(format: QuantFormat) -> Option<Vec<String>> {
    use QuantFormat as F;
    let own = match format {
        F::F32 | F::F16 | F::BF16 | F::Q4_0 | F::Q4_1 | F::Q5_0 | F::Q8_0 | F::Q6_K => vec![],
        F::Q4_K | F::Q5_K => vec!["formats/k_scales.wgsl".to_string()],
        _ => return None,
    };
    let mut v = own;
    v.push(format!("formats/{}.wgsl", format.name()));
    Some(v)
}

/// The spec for `key`, or `None` when no such kernel exists.
pub fn spec(key: KernelKey) -> Option<KernelSpec> {
    let name = kernel_name(key.op, key.format);
    let op = key.op.name();
    let mut parts: Vec<String> = Vec::new();
    let (features, wg, rows, tokens, ids, body) = match (key.op, key.variant) {
        (Op::Gemv, Variant::Subgroup) => (
            wgpu::Features::SUBGROUP,
            GEMV_WG,
            GEMV_ROWS,
            1,
            "subgroup",
            vec!["gemv/reduce_subgroup.wgsl", "gemv/gemv_body.wgsl"],
        ),
        (Op::Gemv, Variant::Plain) => (
            wgpu::Features::empty(),
            GEMV_WG,
            GEMV_ROWS,
            1,
            "plain",
            vec!["gemv/reduce_workgroup.wgsl", "gemv/gemv_body.wgsl"],
        ),
        (Op::Gemm, Variant::Plain) => (
            wgpu::Features::empty(),
            GEMM_WG,
            GEMM_ROWS,
            GEMM_TOKENS,
            "plain",
            vec!["gemm/gemm_body.wgsl"],
        ),
        (Op::Gemm, Variant::F16) => {
            parts.push("common/enable_f16.wgsl".into());
            (
                wgpu::Features::SHADER_F16,
                GEMM_WG,
                GEMM_ROWS,
                GEMM_TOKENS,
                "plain",
                vec!["gemm/gemm_body_f16.wgsl"],
            )
        }
        (Op::Gemv, Variant::F16) | (Op::Gemm, Variant::Subgroup) => return None,
    };
    parts.push("common/matmul_io.wgsl".into());
    parts.push(format!("common/ids_{ids}.wgsl"));
    parts.extend(format_parts(key.format)?);
    parts.extend(body.into_iter().map(String::from));
    parts.push(format!("{op}/{name}.wgsl"));
    Some(KernelSpec {
        key,
        name,
        parts,
        workgroup_size: wg,
        rows_per_group: rows,
        tokens_per_group: tokens,
        layout: BindLayout::Matmul,
        features,
    })
}

/// Every kernel the registry can build.
pub fn all_specs() -> Vec<KernelSpec> {
    let mut v = Vec::new();
    for op in Op::ALL {
        for &format in op.formats() {
            for variant in Variant::ALL {
                v.extend(spec(KernelKey {
                    op,
                    format,
                    variant,
                }));
            }
        }
    }
    v
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
            let module = ctx
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&spec.name),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
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
