//! Kernel registry: (op, format, variant) → WGSL parts, entry point, geometry, bind layout.
//! Compiled pipelines live in `pipelines.rs`.

use marlin_core::QuantFormat;

mod coop;
mod geometry;
mod specs;
mod specs_multi;
mod trellis_tile;

pub use coop::{
    coop_chunk_spec, coop_kmajor, coop_splits, coop_tt, gemm_variant_for, moe_gemm_spec,
};
pub use geometry::*;
pub use specs::{attn_flash_spec, spec, ATTN_FLASH_MAX_HD};
pub use trellis_tile::{trellis_tile_rows, trellis_tile_tpr};

use crate::op::Op;
use crate::shaders::shader_source;
use crate::{Error, Result};

/// A feature-dependent flavour of a kernel. `Plain` always exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// No optional features: reductions in workgroup memory.
    Plain,
    /// Reductions with `subgroupAdd` (device feature `SUBGROUP`).
    Subgroup,
    /// f16 workgroup tiles and products, f32 accumulation (device feature `SHADER_F16`).
    F16,
    /// Cooperative-matrix (tensor core) GEMM: f16 tiles, f32 accumulators
    /// (`EXPERIMENTAL_COOPERATIVE_MATRIX`, 16x16x16 f16 configs, subgroups of 32); 64-token
    /// tiles, and the launcher runs [`Variant::CoopT16`] / [`Variant::CoopT32`] in its place
    /// for fewer tokens, [`Variant::CoopT128`] for more ([`gemm_variant_for`]).
    Coop,
    /// [`Variant::Coop`] with 32-token tiles (and 64-row tiles).
    CoopT32,
    /// The coop GEMM with 128 x 128 tiles (one weight unit per K chunk): half the weight
    /// staging per product of the 64-token tile, for long prompts.
    CoopT128,
    /// [`Variant::Coop`] with 16-token tiles (and 32-row tiles).
    CoopT16,
    /// GEMV with 8-bit activations and packed integer dot products (formats with integer
    /// codes: [`DP4A_FORMATS`]), subgroup reduction.
    Dp4a,
    /// [`Variant::Subgroup`] GEMV with 64 rows per workgroup (16 threads per row quad), for
    /// tall weights: the x tile each workgroup loads serves 4× the rows.
    SubgroupWide,
    /// [`Variant::Dp4a`] GEMV with 64 rows per workgroup (x quantized once per 64 rows).
    Dp4aWide,
    /// [`Variant::Subgroup`] GEMV with 8 rows per workgroup (128 threads per row quad), for
    /// short float weights (MoE routers): twice the workgroups of the default 16 rows.
    SubgroupDeep,
    /// Attention with one workgroup per (kv head, query token) serving all its query heads
    /// (`attn_paged` only, at most 8 query heads per kv head).
    Gqa,
    /// MoE GEMV with 8 threads per row quad (128 rows per workgroup), for short rows (MLA's
    /// per-head matrices): 64 threads would leave most lanes without a unit.
    Narrow,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 13] = [
        Variant::Plain,
        Variant::Subgroup,
        Variant::F16,
        Variant::Coop,
        Variant::CoopT32,
        Variant::CoopT128,
        Variant::CoopT16,
        Variant::Dp4a,
        Variant::SubgroupWide,
        Variant::Dp4aWide,
        Variant::SubgroupDeep,
        Variant::Gqa,
        Variant::Narrow,
    ];

    /// Stable name for logs and bench lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Subgroup => "subgroup",
            Variant::F16 => "f16",
            Variant::Coop => "coop",
            Variant::CoopT32 => "coop_t32",
            Variant::CoopT128 => "coop_t128",
            Variant::CoopT16 => "coop_t16",
            Variant::Dp4a => "dp4a",
            Variant::SubgroupWide => "subgroup_wide",
            Variant::Dp4aWide => "dp4a_wide",
            Variant::SubgroupDeep => "subgroup_deep",
            Variant::Gqa => "gqa",
            Variant::Narrow => "narrow",
        }
    }

    /// Whether this is a cooperative-matrix GEMM (any token tile).
    pub fn is_coop(self) -> bool {
        matches!(
            self,
            Variant::Coop | Variant::CoopT32 | Variant::CoopT16 | Variant::CoopT128
        )
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
    /// 0: params, 1: read, 2: read_write (in-place ops: rope, gating, add, argmax).
    ReadWrite,
    /// 0: params, 1: read, 2: read, 3: read_write (rms_norm).
    Read2Write,
    /// 0: params, 1-3: read, 4: read_write (moe_hadamard_scale).
    Read3Write,
    /// 0: params, 1-4: read, 5: read_write (attn_paged).
    Read4Write,
    /// 0: params, 1-2: read, 3-4: read_write (add_rms_norm).
    Read2Write2,
    /// 0: params, 1-3: read, 4-5: read_write (kv_write).
    Read3Write2,
    /// 0: params, 1-4: read, 5-7: read_write (rope_kv).
    Read4Write3,
    /// [`BindLayout::Matmul`] plus 4: expert ids (read) (moe_gemv).
    MatmulIds,
    /// [`BindLayout::Matmul`] plus 4: the input side's scales (read) (gemv_hadamard).
    MatmulSide,
    /// [`BindLayout::MatmulIds`] plus 5: the input sides' scales (read) (moe_gemv_hadamard).
    MatmulIdsSide,
    /// [`BindLayout::MatmulIds`] plus 5: slot weights (read), 6: combined output, 7: arrival
    /// counters (read_write) (moe_gemv_silu_combine).
    MatmulIdsCombine,
    /// [`BindLayout::Matmul`] plus 4: norm weight, 5: expert ids (read) (moe_gemv_norm).
    MatmulNormIds,
    /// [`BindLayout::Matmul`] plus 4: norm weight (read), 5: normed x (read_write)
    /// (gemv_norm_out).
    MatmulNormOut,
    /// [`BindLayout::Matmul`] plus 4: norm weight, 5: RoPE rows, 6: step words (read),
    /// 7: k cache, 8: v cache (read_write) (gemv_norm_rope_kv).
    MatmulNormRopeKv,
    /// 0: params, 1-5: read, 6: read_write (attn_mla).
    Read5Write,
    /// 0: params, 1-4: read, 5-6: read_write (mla_latent).
    Read4Write2,
}

impl BindLayout {
    /// Byte size of the params struct bound at binding 0.
    pub fn params_size(self) -> u64 {
        32
    }

    /// Storage bindings after the params: `true` = read-only.
    pub fn storage(self) -> &'static [bool] {
        match self {
            BindLayout::Matmul | BindLayout::Read2Write => &[true, true, false],
            BindLayout::ReadWrite => &[true, false],
            BindLayout::Read3Write => &[true, true, true, false],
            BindLayout::Read4Write => &[true, true, true, true, false],
            BindLayout::Read2Write2 => &[true, true, false, false],
            BindLayout::Read3Write2 => &[true, true, true, false, false],
            BindLayout::Read4Write3 => &[true, true, true, true, false, false, false],
            BindLayout::MatmulIds | BindLayout::MatmulSide => &[true, true, false, true],
            BindLayout::MatmulIdsSide => &[true, true, false, true, true],
            BindLayout::MatmulIdsCombine => &[true, true, false, true, true, false, false],
            BindLayout::MatmulNormIds => &[true, true, false, true, true],
            BindLayout::MatmulNormOut => &[true, true, false, true, false],
            BindLayout::MatmulNormRopeKv => &[true, true, false, true, true, true, false, false],
            BindLayout::Read5Write => &[true, true, true, true, true, false],
            BindLayout::Read4Write2 => &[true, true, true, true, false, false],
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
    /// `const NAME: u32 = VALUE;` lines appended to the parts (per-format geometry).
    pub defines: Vec<(&'static str, u32)>,
    /// WGSL appended after the parts: the entry point of kernels without an entry file.
    pub entry: String,
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
        // After the parts: `enable` directives must come first, and module-scope
        // declarations may come in any order.
        s.push_str("// ---- defines\n");
        for (name, value) in &self.defines {
            s.push_str(&format!("const {name}: u32 = {value}u;\n"));
        }
        s.push_str(&self.entry);
        Ok(s)
    }
}

/// The matmul kernels' shared parts: `matmul_io.wgsl` and its params as one uniform
/// (`moe_gemm` places its params per workgroup instead).
pub(crate) fn matmul_io_parts() -> Vec<String> {
    matmul_io_parts_with("common/out_plain.wgsl")
}

/// [`matmul_io_parts`] with the output declared by `out_file` (`common/out_coherent.wgsl`
/// for kernels that read back rows other workgroups wrote).
pub(crate) fn matmul_io_parts_with(out_file: &str) -> Vec<String> {
    vec![
        "common/matmul_io.wgsl".to_string(),
        out_file.to_string(),
        "common/matmul_uniform.wgsl".to_string(),
    ]
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
