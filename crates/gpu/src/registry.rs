//! Kernel registry: (op, format, variant) → WGSL parts, entry point, geometry, bind layout.
//! Compiled pipelines live in `pipelines.rs`.

use marlin_core::QuantFormat;

use crate::format_parts::{format_defines, format_parts, has_entry_file};
use crate::op::{kernel_name, Op};
use crate::shaders::shader_source;
use crate::{Error, Result};

/// Threads per workgroup of the GEMV kernels (`WG` in gemv_body.wgsl).
pub const GEMV_WG: u32 = 256;
/// Threads per workgroup of the GEMM kernels (`WG` in gemm_body.wgsl).
pub const GEMM_WG: u32 = 64;
/// Rows per GEMM workgroup (`TM`).
pub const GEMM_ROWS: u32 = 64;
/// Tokens per GEMM workgroup (`TN`).
pub const GEMM_TOKENS: u32 = 16;
/// Threads per workgroup of the cooperative-matrix GEMM.
pub const GEMM_COOP_WG: u32 = 128;
/// Tokens per cooperative-matrix GEMM workgroup (rows: `GEMM_ROWS`).
pub const GEMM_COOP_TOKENS: u32 = 64;

/// (rows, tokens) one GEMM workgroup of `variant` covers.
pub fn gemm_tile(variant: Variant) -> (u32, u32) {
    match variant {
        Variant::Coop => (GEMM_ROWS, GEMM_COOP_TOKENS),
        _ => (GEMM_ROWS, GEMM_TOKENS),
    }
}

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
    /// (`EXPERIMENTAL_COOPERATIVE_MATRIX`, 16x16x16 f16 configs, subgroups of 32).
    Coop,
    /// GEMV with 8-bit activations and packed integer dot products (formats with integer
    /// codes: [`DP4A_FORMATS`]), subgroup reduction.
    Dp4a,
}

/// Formats with a Dp4a GEMV (`dot_unit_q8` in their decode file).
pub const DP4A_FORMATS: &[QuantFormat] = &[QuantFormat::Q4_0, QuantFormat::Q8_0, QuantFormat::Q4_K];

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 5] = [
        Variant::Plain,
        Variant::Subgroup,
        Variant::F16,
        Variant::Coop,
        Variant::Dp4a,
    ];

    /// Stable name for logs and bench lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Subgroup => "subgroup",
            Variant::F16 => "f16",
            Variant::Coop => "coop",
            Variant::Dp4a => "dp4a",
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
    /// 0: params, 1: read, 2: read_write (in-place ops: rope, gating, add, argmax).
    ReadWrite,
    /// 0: params, 1: read, 2: read, 3: read_write (rms_norm).
    Read2Write,
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
            BindLayout::Read4Write => &[true, true, true, true, false],
            BindLayout::Read2Write2 => &[true, true, false, false],
            BindLayout::Read3Write2 => &[true, true, true, false, false],
            BindLayout::Read4Write3 => &[true, true, true, true, false, false, false],
            BindLayout::MatmulIds => &[true, true, false, true],
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

/// Workgroup size of the format-less kernels (`WG` in their files).
pub fn op_workgroup_size(op: Op) -> u32 {
    match op {
        // One workgroup per row or head: wider groups keep more loads in flight (decode).
        Op::Argmax | Op::RmsNorm | Op::AddRmsNorm => 256,
        Op::SampleCands | Op::SamplePick => 256,
        Op::AttnPaged | Op::AttnSplit | Op::AttnPrefill => 128,
        _ => 64,
    }
}

/// Spec of a format-less op (`shaders/ops/<name>.wgsl`) or of an embedding lookup.
fn op_spec(key: KernelKey) -> Option<KernelSpec> {
    if key.variant != Variant::Plain {
        return None;
    }
    let name = kernel_name(key.op, key.format);
    let (parts, layout) = match key.op {
        Op::Gemv | Op::Gemm | Op::MoeGemv => return None,
        Op::Embed => {
            let mut parts = vec!["common/matmul_io.wgsl".to_string()];
            parts.extend(format_parts(key.format)?);
            parts.push("embed/embed_body.wgsl".into());
            if has_entry_file(key.format) {
                parts.push(format!("embed/{name}.wgsl"));
            }
            (parts, BindLayout::Matmul)
        }
        _ if key.format != QuantFormat::F32 => return None,
        Op::RmsNorm => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write),
        Op::KvWrite => (vec![format!("ops/{name}.wgsl")], BindLayout::Read3Write2),
        Op::AttnPaged | Op::AttnSplit => (
            vec!["ops/attn_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::Read4Write,
        ),
        Op::AttnCombine => (vec![format!("ops/{name}.wgsl")], BindLayout::ReadWrite),
        Op::AttnPrefill => (vec![format!("ops/{name}.wgsl")], BindLayout::Read4Write),
        Op::AddRmsNorm => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write2),
        Op::RopeKvNormal | Op::RopeKvNeox => (
            vec!["ops/rope_kv_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::Read4Write3,
        ),
        Op::RopeNormal | Op::RopeNeox => (
            vec!["ops/rope_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::ReadWrite,
        ),
        Op::SiluMul | Op::GeluTanhMul => (
            vec!["ops/gate_mul_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::ReadWrite,
        ),
        Op::MoeRoute => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write2),
        Op::MoeCombine => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write),
        Op::Add | Op::Argmax | Op::Hadamard => {
            (vec![format!("ops/{name}.wgsl")], BindLayout::ReadWrite)
        }
        Op::SampleCands | Op::SamplePick => (
            vec!["ops/sample_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::Read2Write,
        ),
    };
    let entry = match key.op {
        Op::Embed if !has_entry_file(key.format) => format!(
            "@compute @workgroup_size(WG)\nfn {name}(@builtin(local_invocation_index) lid: u32, \
             @builtin(workgroup_id) wid: vec3<u32>) {{\n    embed_run(lid, wid.x);\n}}\n"
        ),
        _ => String::new(),
    };
    Some(KernelSpec {
        key,
        name,
        parts,
        workgroup_size: op_workgroup_size(key.op),
        rows_per_group: 1,
        tokens_per_group: 1,
        layout,
        features: wgpu::Features::empty(),
        entry,
        defines: format_defines(key.format),
    })
}

/// The spec for `key`, or `None` when no such kernel exists.
pub fn spec(key: KernelKey) -> Option<KernelSpec> {
    if key.op == Op::MoeGemv {
        return moe_gemv_spec(key);
    }
    if !matches!(key.op, Op::Gemv | Op::Gemm) {
        return op_spec(key);
    }
    let name = kernel_name(key.op, key.format);
    let op = key.op.name();
    let mut parts: Vec<String> = Vec::new();
    let gw = gemv_group_threads(key.format);
    // subgroupAdd sums whole subgroups: only valid when no subgroup straddles two thread
    // groups, which GW = 64 guarantees for every subgroup size up to 64.
    let gemv_reduce = match key.variant {
        Variant::Subgroup if gw == 64 => "gemv/reduce_subgroup.wgsl",
        _ => "gemv/reduce_shared.wgsl",
    };
    let gemv_reduce_dp4a = if gw == 64 {
        "gemv/reduce_subgroup.wgsl"
    } else {
        "gemv/reduce_shared.wgsl"
    };
    let (features, wg, rows, tokens, ids, body) = match (key.op, key.variant) {
        (Op::Gemv, Variant::Subgroup) => (
            wgpu::Features::SUBGROUP,
            GEMV_WG,
            gemv_rows(key.format),
            1,
            "subgroup",
            vec![gemv_reduce, "gemv/gemv_body.wgsl"],
        ),
        (Op::Gemv, Variant::Dp4a) if DP4A_FORMATS.contains(&key.format) => (
            wgpu::Features::SUBGROUP,
            GEMV_WG,
            gemv_rows(key.format),
            1,
            "subgroup",
            vec![gemv_reduce_dp4a, "gemv/gemv_body_q8.wgsl"],
        ),
        (Op::Gemv, Variant::Plain) => (
            wgpu::Features::empty(),
            GEMV_WG,
            gemv_rows(key.format),
            1,
            "plain",
            vec![gemv_reduce, "gemv/gemv_body.wgsl"],
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
        (Op::Gemm, Variant::Coop) => {
            parts.push("common/enable_coop.wgsl".into());
            (
                wgpu::Features::SHADER_F16
                    | wgpu::Features::SUBGROUP
                    | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
                GEMM_COOP_WG,
                GEMM_ROWS,
                GEMM_COOP_TOKENS,
                "subgroup",
                vec!["gemm/gemm_body_coop.wgsl"],
            )
        }
        _ => return None,
    };
    parts.push("common/matmul_io.wgsl".into());
    parts.push(format!("common/ids_{ids}.wgsl"));
    parts.extend(format_parts(key.format)?);
    parts.extend(body.into_iter().map(String::from));
    let mut entry = String::new();
    if has_entry_file(key.format) {
        parts.push(format!("{op}/{name}.wgsl"));
    } else {
        entry = format!(
            "@compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    {op}_run(ids);\n}}\n"
        );
    }
    let mut defines = format_defines(key.format);
    if key.op == Op::Gemv {
        defines.extend([("GW", gw), ("NR", rows)]);
    }
    Some(KernelSpec {
        key,
        name,
        parts,
        workgroup_size: wg,
        rows_per_group: rows,
        tokens_per_group: tokens,
        layout: BindLayout::Matmul,
        features,
        defines,
        entry,
    })
}

/// The MoE GEMV of `key.format` (plain variant only): the GEMV's tiling over stacked
/// expert weights, rows picked per token slot by expert id.
fn moe_gemv_spec(key: KernelKey) -> Option<KernelSpec> {
    if key.variant != Variant::Plain {
        return None;
    }
    let name = kernel_name(key.op, key.format);
    let mut parts = vec![
        "common/matmul_io.wgsl".to_string(),
        "common/ids_plain.wgsl".to_string(),
    ];
    parts.extend(format_parts(key.format)?);
    parts.push("gemv/moe_gemv_body.wgsl".into());
    let rows = gemv_rows(key.format);
    let mut defines = format_defines(key.format);
    defines.extend([("GW", gemv_group_threads(key.format)), ("NR", rows)]);
    Some(KernelSpec {
        key,
        entry: format!(
            "@compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    moe_gemv_run(ids);\n}}\n"
        ),
        name,
        parts,
        workgroup_size: GEMV_WG,
        rows_per_group: rows,
        tokens_per_group: 1,
        layout: BindLayout::MatmulIds,
        features: wgpu::Features::empty(),
        defines,
    })
}

/// Threads that share one GEMV row quad (`GW`); each streams 4 rows × 128 / GW units per x
/// tile. 64 measured best for every format on the H200 (q4_0 14336×4096: 1712 GB/s at 64,
/// 1590 at 32, 1551 at 16): the GEMV is bound by instructions per byte, not bytes in flight.
/// `MARLIN_GEMV_GW` (16, 32 or 64) overrides it, for tuning on other GPUs.
pub fn gemv_group_threads(_format: QuantFormat) -> u32 {
    std::env::var("MARLIN_GEMV_GW")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|gw| matches!(gw, 16 | 32 | 64))
        .unwrap_or(64)
}

/// Output rows one GEMV workgroup of `format` covers (`NR` = 4 rows per thread group).
pub fn gemv_rows(format: QuantFormat) -> u32 {
    4 * GEMV_WG / gemv_group_threads(format)
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
