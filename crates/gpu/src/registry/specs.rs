//! Kernel specs: which shader parts, entry point, geometry, bind layout and features make
//! the kernel of a (op, format, variant) key.

use marlin_core::QuantFormat;

use super::geometry::*;
use super::specs_multi::{gemv_multi_spec, moe_gemv_multi_spec, moe_gemv_spec};
use super::{matmul_io_parts, BindLayout, KernelKey, KernelSpec, Variant};
use crate::format_parts::{format_defines, format_parts, has_entry_file};
use crate::op::{kernel_name, Op};

/// The quantized-KV code helpers every cache writer and attention kernel includes.
const KV_CODES: &str = "ops/kv_codes.wgsl";
/// RoPE pair indexing of an MLA rope part (queries and keys).
const MLA_ROPE_PAIR: &str = "ops/mla_rope_pair.wgsl";
/// RoPE of an MLA query's rope part (attn_mla, mla_q_pack).
const MLA_ROPE_Q: &str = "ops/mla_rope_q.wgsl";

/// Spec of a format-less op (`shaders/ops/<name>.wgsl`) or of an embedding lookup.
fn op_spec(key: KernelKey) -> Option<KernelSpec> {
    if key.variant != Variant::Plain {
        return None;
    }
    let name = kernel_name(key.op, key.format);
    let (parts, layout) = match key.op {
        Op::Gemv
        | Op::GemvNorm
        | Op::GemvNormOut
        | Op::GemvAdd
        | Op::GemvNormRopeKv
        | Op::GemvNormSwiglu
        | Op::GemvHadamard
        | Op::Gemm
        | Op::GemvMulti
        | Op::MoeGemv
        | Op::MoeGemvHadamard
        | Op::MoeGemvNorm
        | Op::MoeGemvSilu
        | Op::MoeGemvSiluCombine
        | Op::MoeGemvMulti
        | Op::MoeGemm
        | Op::AttnFlash => return None,
        Op::Embed => {
            let mut parts = matmul_io_parts();
            parts.extend(format_parts(key.format)?);
            parts.push("embed/embed_body.wgsl".into());
            if has_entry_file(key.format) {
                parts.push(format!("embed/{name}.wgsl"));
            }
            (parts, BindLayout::Matmul)
        }
        _ if key.format != QuantFormat::F32 => return None,
        Op::RmsNorm => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write),
        Op::ActQ8 => (
            vec!["gemv/q8_act.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::ReadWrite,
        ),
        Op::KvWrite => (
            vec![KV_CODES.into(), format!("ops/{name}.wgsl")],
            BindLayout::Read3Write2,
        ),
        Op::AttnPaged | Op::AttnSplit => (
            vec![
                KV_CODES.into(),
                "ops/attn_rows.wgsl".into(),
                "ops/attn_body.wgsl".into(),
                format!("ops/{name}.wgsl"),
            ],
            BindLayout::Read4Write,
        ),
        Op::AttnCombine => (vec![format!("ops/{name}.wgsl")], BindLayout::ReadWrite),
        Op::GatherRows => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write),
        Op::AttnPrefill => (
            vec![KV_CODES.into(), format!("ops/{name}.wgsl")],
            BindLayout::Read4Write,
        ),
        Op::AddRmsNorm => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write2),
        Op::RopeKvNormal | Op::RopeKvNeox => (
            vec![
                KV_CODES.into(),
                "ops/rope_kv_body.wgsl".into(),
                format!("ops/{name}.wgsl"),
            ],
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
        Op::MoeSort => (vec![format!("ops/{name}.wgsl")], BindLayout::ReadWrite),
        Op::AttnMla => (
            vec![
                MLA_ROPE_PAIR.into(),
                MLA_ROPE_Q.into(),
                format!("ops/{name}.wgsl"),
            ],
            BindLayout::Read5Write,
        ),
        Op::MlaQPack => (
            vec![
                MLA_ROPE_PAIR.into(),
                MLA_ROPE_Q.into(),
                format!("ops/{name}.wgsl"),
            ],
            BindLayout::Read3Write,
        ),
        Op::MlaKvDense => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write2),
        Op::MlaSoftmax => (vec![format!("ops/{name}.wgsl")], BindLayout::ReadWrite),
        Op::MlaLatent => (
            vec![MLA_ROPE_PAIR.into(), format!("ops/{name}.wgsl")],
            BindLayout::Read4Write2,
        ),
        Op::MoeCombine => (vec![format!("ops/{name}.wgsl")], BindLayout::Read2Write),
        Op::GemmSplitkReduce => (vec![format!("gemm/{name}.wgsl")], BindLayout::ReadWrite),
        Op::HadamardScale => (
            vec!["ops/hadamard_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::Read2Write,
        ),
        Op::MoeHadamardScale => (
            vec!["ops/hadamard_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::Read3Write,
        ),
        Op::MoeHadamardSwiglu | Op::MoeHadamardCombine => (
            vec!["ops/hadamard_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::Read4Write,
        ),
        Op::Hadamard => (
            vec!["ops/hadamard_body.wgsl".into(), format!("ops/{name}.wgsl")],
            BindLayout::ReadWrite,
        ),
        Op::Add | Op::Argmax => (vec![format!("ops/{name}.wgsl")], BindLayout::ReadWrite),
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
    // Trellis weights need their scaled rotations around the kernel, which only the matmul
    // and MoE expert launchers record: no embedding kernels for them.
    if key.format.is_trellis() && key.op == Op::Embed {
        return None;
    }
    if matches!(
        key.op,
        Op::Gemv | Op::MoeGemv | Op::GemvHadamard | Op::MoeGemvHadamard
    ) && key.format.is_trellis()
        && key.variant == Variant::F16
    {
        return super::trellis_tile::trellis_tile_spec(key);
    }
    if matches!(key.op, Op::GemvHadamard | Op::MoeGemvHadamard) {
        return None;
    }
    if matches!(
        key.op,
        Op::MoeGemv | Op::MoeGemvNorm | Op::MoeGemvSilu | Op::MoeGemvSiluCombine
    ) {
        return moe_gemv_spec(key);
    }
    if key.op == Op::GemvMulti {
        return gemv_multi_spec(key);
    }
    if key.op == Op::MoeGemvMulti {
        return moe_gemv_multi_spec(key);
    }
    if key.op == Op::AttnFlash {
        return attn_flash_spec(key, ATTN_FLASH_MAX_HD);
    }
    if key.op == Op::AttnPaged && key.variant == Variant::Gqa {
        return attn_gqa_spec(key);
    }
    if key.op == Op::MoeGemm || (key.op == Op::Gemm && key.variant.is_coop()) {
        return super::coop::coop_spec(key);
    }
    let fused = key.op.is_fused_gemv();
    if !(fused || matches!(key.op, Op::Gemv | Op::Gemm)) {
        return op_spec(key);
    }
    // gemv_norm(_out) / gemv_add are the GEMV with other input/output hooks: plain weights
    // only (rotated and trellis weights transform x or the output around the kernel).
    if fused && key.format.is_trellis() {
        return None;
    }
    let gemv_op = if fused { Op::Gemv } else { key.op };
    let name = kernel_name(key.op, key.format);
    let op = key.op.name();
    let mut parts: Vec<String> = Vec::new();
    let gw = gemv_group_threads(key.format, key.variant);
    let gemv_nr = gemv_rows(key.format, key.variant);
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
    let (features, wg, rows, tokens, ids, body) = match (gemv_op, key.variant) {
        (Op::Gemv, Variant::SubgroupDeep) if !gemv_deep_format(key.format) => return None,
        (Op::Gemv, Variant::Subgroup | Variant::SubgroupWide | Variant::SubgroupDeep) => (
            wgpu::Features::SUBGROUP,
            GEMV_WG,
            gemv_nr,
            1,
            "subgroup",
            vec![gemv_reduce, "gemv/tile_acc.wgsl", "gemv/gemv_body.wgsl"],
        ),
        (Op::Gemv, Variant::Dp4a | Variant::Dp4aWide) if DP4A_FORMATS.contains(&key.format) => (
            wgpu::Features::SUBGROUP,
            GEMV_WG,
            gemv_nr,
            1,
            "subgroup",
            vec![
                gemv_reduce_dp4a,
                "gemv/q8_act.wgsl",
                "gemv/tile_acc.wgsl",
                "gemv/q8_tile.wgsl",
                "gemv/gemv_body_q8.wgsl",
            ],
        ),
        (Op::Gemv, Variant::Plain) => (
            wgpu::Features::empty(),
            GEMV_WG,
            gemv_nr,
            1,
            "plain",
            vec![gemv_reduce, "gemv/tile_acc.wgsl", "gemv/gemv_body.wgsl"],
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
        _ => return None,
    };
    parts.extend(matmul_io_parts());
    parts.push(format!("common/ids_{ids}.wgsl"));
    parts.extend(format_parts(key.format)?);
    if gemv_op == Op::Gemv {
        let hooks: &[&str] = match key.op {
            Op::GemvNorm => &["x_norm", "norm_end", "out_store"],
            Op::GemvNormOut => &["x_norm", "norm_out", "out_store"],
            Op::GemvAdd => &["x_plain", "out_add"],
            Op::GemvNormRopeKv => &["x_norm", "norm_end", "out_rope_kv"],
            Op::GemvNormSwiglu => &["x_norm", "norm_end", "out_swiglu"],
            _ => &["x_plain", "out_store"],
        };
        parts.extend(hooks.iter().map(|h| format!("gemv/{h}.wgsl")));
    }
    parts.extend(body.into_iter().map(String::from));
    let mut entry = String::new();
    if has_entry_file(key.format) && !fused {
        parts.push(format!("{op}/{name}.wgsl"));
    } else {
        let run = gemv_op.name();
        entry = format!(
            "@compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    {run}_run(ids);\n}}\n"
        );
    }
    let mut defines = format_defines(key.format);
    if gemv_op == Op::Gemv {
        defines.extend([("GW", gw), ("NR", rows)]);
    }
    Some(KernelSpec {
        key,
        name,
        parts,
        workgroup_size: wg,
        rows_per_group: rows,
        tokens_per_group: tokens,
        // gemv_norm's norm weight sits at binding 4, gemv_norm_out's normed x at 5.
        layout: match key.op {
            Op::GemvNorm | Op::GemvNormSwiglu => BindLayout::MatmulIds,
            Op::GemvNormOut => BindLayout::MatmulNormOut,
            Op::GemvNormRopeKv => BindLayout::MatmulNormRopeKv,
            _ => BindLayout::Matmul,
        },
        features,
        defines,
        entry,
    })
}

/// `attn_paged` with one workgroup per (kv head, query token) for all its query heads.
fn attn_gqa_spec(key: KernelKey) -> Option<KernelSpec> {
    if key.format != QuantFormat::F32 {
        return None;
    }
    Some(KernelSpec {
        key,
        name: format!("{}_gqa", kernel_name(key.op, key.format)),
        parts: [
            KV_CODES,
            "ops/attn_rows.wgsl",
            "ops/attn_body.wgsl",
            "ops/attn_gqa_body.wgsl",
            "ops/attn_paged_gqa.wgsl",
        ]
        .map(String::from)
        .to_vec(),
        workgroup_size: op_workgroup_size(key.op),
        rows_per_group: 1,
        tokens_per_group: 1,
        layout: BindLayout::Read4Write,
        features: wgpu::Features::empty(),
        defines: Vec::new(),
        entry: String::new(),
    })
}

/// Largest head size of [`Op::AttnFlash`] (its Q and K/V tiles, 47 KiB of workgroup
/// memory at 128).
pub const ATTN_FLASH_MAX_HD: u32 = 128;

/// The flash prefill attention on cooperative matrices (`key.variant` must be
/// [`Variant::Coop`]), for head sizes up to `max_hd` (a multiple of 16; tests on devices
/// with 32 KiB of workgroup memory use 64).
pub fn attn_flash_spec(key: KernelKey, max_hd: u32) -> Option<KernelSpec> {
    if key.variant != Variant::Coop || key.format != QuantFormat::F32 || !max_hd.is_multiple_of(16)
    {
        return None;
    }
    Some(KernelSpec {
        key,
        name: kernel_name(key.op, key.format),
        parts: vec![
            "common/enable_coop.wgsl".into(),
            "common/ids_subgroup.wgsl".into(),
            "ops/attn_flash.wgsl".into(),
        ],
        workgroup_size: op_workgroup_size(key.op),
        rows_per_group: 1,
        tokens_per_group: 1,
        layout: BindLayout::Read4Write,
        features: wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
        defines: vec![("MAX_HD", max_hd)],
        entry: String::new(),
    })
}
