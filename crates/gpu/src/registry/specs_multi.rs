//! Kernel specs of the matmuls over stacked experts and small batches: the MoE GEMV
//! (`moe_gemv*`), the grouped MoE GEMV (`moe_gemv_multi`) and `gemv_multi`.

use super::geometry::*;
use super::{matmul_io_parts, matmul_io_parts_with, BindLayout, KernelKey, KernelSpec, Variant};
use crate::format_parts::{format_defines, format_parts};
use crate::op::{kernel_name, Op};

/// The MoE GEMV of `key.format` (plain variant only): the GEMV's tiling over stacked
/// expert weights, rows picked per token slot by expert id; `moe_gemv_norm` and
/// `moe_gemv_silu` read x through their hooks (no trellis: its sides scale x first).
pub(super) fn moe_gemv_spec(key: KernelKey) -> Option<KernelSpec> {
    let narrow_ok = key.variant == Variant::Narrow && !key.format.is_trellis();
    let dp4a = matches!(key.variant, Variant::Dp4a | Variant::Dp4aWide)
        && DP4A_FORMATS.contains(&key.format);
    if !(key.variant == Variant::Plain || narrow_ok || dp4a)
        || (key.op != Op::MoeGemv && key.format.is_trellis())
    {
        return None;
    }
    // The norm hook takes binding 4 for its weight; the expert ids move to 5.
    let (hook, ids_binding, layout) = match key.op {
        Op::MoeGemvNorm => (&["x_norm", "norm_end"][..], 5, BindLayout::MatmulNormIds),
        Op::MoeGemvSilu => (&["x_silu"][..], 4, BindLayout::MatmulIds),
        Op::MoeGemvSiluCombine => (&["x_silu"][..], 4, BindLayout::MatmulIdsCombine),
        _ => (&["x_plain"][..], 4, BindLayout::MatmulIds),
    };
    let combine = key.op == Op::MoeGemvSiluCombine;
    let name = kernel_name(key.op, key.format);
    // The combining workgroups read rows other workgroups wrote.
    let mut parts = match combine {
        true => matmul_io_parts_with("common/out_coherent.wgsl"),
        false => matmul_io_parts(),
    };
    parts.push("common/ids_plain.wgsl".to_string());
    parts.extend(format_parts(key.format)?);
    parts.extend(hook.iter().map(|h| format!("gemv/{h}.wgsl")));
    parts.push("gemv/out_store.wgsl".into());
    parts.push(match combine {
        true => "gemv/moe_store_combine.wgsl".into(),
        false => "gemv/moe_store.wgsl".into(),
    });
    parts.push("gemv/reduce_shared.wgsl".into());
    if dp4a {
        parts.push("gemv/q8_act.wgsl".into());
    }
    parts.push("gemv/tile_acc.wgsl".into());
    parts.push("gemv/moe_slot.wgsl".into());
    if dp4a {
        parts.extend([
            "gemv/q8_tile.wgsl".into(),
            "gemv/moe_gemv_body_q8.wgsl".into(),
        ]);
    } else {
        parts.push("gemv/moe_gemv_body.wgsl".into());
    }
    let rows = gemv_rows(key.format, key.variant);
    let mut defines = format_defines(key.format);
    defines.extend([
        ("GW", gemv_group_threads(key.format, key.variant)),
        ("NR", rows),
    ]);
    if dp4a {
        defines.push(("Q8_PREFETCH", u32::from(moe_prefetch())));
    }
    Some(KernelSpec {
        key,
        entry: format!(
            "@group(0) @binding({ids_binding}) var<storage, read> moe_ids: array<u32>;\n\
             @compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    moe_gemv_run(ids);\n}}\n"
        ),
        name,
        parts,
        workgroup_size: GEMV_WG,
        rows_per_group: rows,
        tokens_per_group: 1,
        layout,
        features: match combine {
            true => wgpu::Features::MEMORY_DECORATION_COHERENT,
            false => wgpu::Features::empty(),
        },
        defines,
    })
}

/// The grouped MoE GEMV of `key.format`: gemv_multi's body over chunks of slots that
/// share an expert (multi_rows_moe.wgsl), each weight unit decoded once for up to MT
/// slots; plain (f32 activations) for every format (trellis: on the tiles of Q, its
/// launcher records the sides), Dp4a / Dp4aWide (8-bit activations) for [`dp4a_multi`]
/// formats.
pub(super) fn moe_gemv_multi_spec(key: KernelKey) -> Option<KernelSpec> {
    multi_body_spec(key, "gemv/multi_rows_moe.wgsl", BindLayout::MatmulIds)
}

/// The small-batch GEMV of `key.format`: plain (f32 activations) for every format, Dp4a
/// (8-bit activations) for [`dp4a_multi`] formats. Shared-memory reduction only: its 16-thread
/// row pairs would straddle subgroups, so neither variant needs a device feature.
pub(super) fn gemv_multi_spec(key: KernelKey) -> Option<KernelSpec> {
    multi_body_spec(key, "gemv/multi_rows_plain.wgsl", BindLayout::Matmul)
}

/// A kernel running `gemv_multi_run` with the `rows` hook (which weight rows and tokens a
/// workgroup takes) after the matmul I/O, plain ids and the format's decode files: the f32
/// body for [`Variant::Plain`], the 8-bit one for Dp4a / Dp4aWide of [`dp4a_multi`]
/// formats; NR / MT (and Dp4a TU) geometry.
fn multi_body_spec(key: KernelKey, rows: &str, layout: BindLayout) -> Option<KernelSpec> {
    let body: &[&str] = match key.variant {
        Variant::Plain => &["gemv/gemv_multi_reduce.wgsl", "gemv/gemv_multi_body.wgsl"],
        Variant::Dp4a | Variant::Dp4aWide if dp4a_multi(key.format) => {
            &["gemv/gemv_multi_body_q8.wgsl"]
        }
        _ => return None,
    };
    let name = kernel_name(key.op, key.format);
    let mut parts = matmul_io_parts();
    parts.push("common/ids_plain.wgsl".to_string());
    parts.extend(format_parts(key.format)?);
    parts.extend(["gemv/multi_tile.wgsl", rows].map(String::from));
    parts.extend(body.iter().map(|s| s.to_string()));
    let mut defines = format_defines(key.format);
    let tokens = gemv_multi_tokens();
    let rows = gemv_multi_rows(key.variant);
    defines.extend([("NR", rows), ("MT", tokens)]);
    if key.variant != Variant::Plain {
        defines.push(("TU", gemv_multi_lanes(key.variant)));
    }
    Some(KernelSpec {
        key,
        entry: format!(
            "@compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    gemv_multi_run(ids);\n}}\n"
        ),
        name,
        parts,
        workgroup_size: GEMV_WG,
        rows_per_group: rows,
        tokens_per_group: tokens,
        layout,
        features: wgpu::Features::empty(),
        defines,
    })
}
