//! CPU-only shader checks: every registered kernel parses and validates with naga (with
//! exactly the capabilities its variant requests) and translates to MSL; the embedded table
//! matches the files on disk; geometry constants and bindings match the launcher.

use std::collections::BTreeSet;
use std::path::Path;

use marlin_gpu::registry::{
    coop_chunk_spec, dp4a_multi, gemm_tile, gemv_deep_format, gemv_multi_rows, gemv_multi_tokens,
    gemv_rows, BindLayout, DP4A_FORMATS, GEMM_COOP_WG, GEMM_ROWS, GEMM_TOKENS, GEMM_WG, GEMV_WG,
};
use marlin_gpu::shaders::SHADER_FILES;
use marlin_gpu::{all_specs, KernelSpec, Op, Variant, MATMUL_FORMATS};
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

fn validate(spec: &KernelSpec) -> (naga::Module, naga::valid::ModuleInfo) {
    let src = spec.source().expect("source");
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("{}: parse\n{}", spec.name, e.emit_to_string(&src)));
    let coop = spec.key.variant.is_coop();
    let subgroup = spec.features.contains(marlin_gpu::wgpu::Features::SUBGROUP) || coop;
    // unpack2x16float needs SHADER_FLOAT16_IN_FLOAT32: wgpu grants it on every adapter with
    // the SHADER_F16_IN_F32 downlevel flag (all Vulkan, Metal and DX12 devices).
    let mut caps = Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    if subgroup {
        caps |= Capabilities::SUBGROUP;
    }
    if spec.key.variant == Variant::F16 || coop {
        caps |= Capabilities::SHADER_FLOAT16;
    }
    if coop {
        caps |= Capabilities::COOPERATIVE_MATRIX;
    }
    let coherent = marlin_gpu::wgpu::Features::MEMORY_DECORATION_COHERENT;
    if spec.features.contains(coherent) {
        caps |= Capabilities::MEMORY_DECORATION_COHERENT;
    }
    let mut v = Validator::new(ValidationFlags::all(), caps);
    if subgroup {
        v.subgroup_stages(ShaderStages::COMPUTE);
        v.subgroup_operations(SubgroupOperationSet::all());
    }
    let info = v
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: validate\n{}", spec.name, e.emit_to_string(&src)));
    (module, info)
}

#[test]
fn every_kernel_validates_and_translates_to_msl() {
    let specs = all_specs();
    // Plain and subgroup GEMV, plain, f16 and coop GEMM (four token tiles), plain
    // gemv_multi, embed and MoE GEMV for every format (trellis: no embed), dp4a GEMV and
    // gemv_multi for some; one kernel per format-less op.
    let single = Op::ALL.iter().filter(|op| !op.per_format()).count();
    let trellis = MATMUL_FORMATS.iter().filter(|f| f.is_trellis()).count();
    assert_eq!(trellis, 9);
    // The fused GEMVs (gemv_norm, gemv_norm_out, gemv_add, gemv_norm_rope_kv,
    // gemv_norm_swiglu): plain, subgroup and (some) dp4a, no trellis.
    let n_fused = Op::ALL.iter().filter(|op| op.is_fused_gemv()).count();
    assert_eq!(n_fused, 5);
    let fused = n_fused * (2 * (MATMUL_FORMATS.len() - trellis) + DP4A_FORMATS.len());
    // The wide GEMVs: subgroup_wide for every gemv (trellis too) and fused GEMV, dp4a_wide
    // for the dp4a formats of all of them.
    let wide = MATMUL_FORMATS.len()
        + n_fused * (MATMUL_FORMATS.len() - trellis)
        + (1 + n_fused) * DP4A_FORMATS.len();
    // subgroup_deep for the float formats' gemv and fused GEMVs.
    let deep = MATMUL_FORMATS
        .iter()
        .filter(|&&f| gemv_deep_format(f))
        .count();
    assert_eq!(deep, 3);
    // dp4a gemv_multi and moe_gemv_multi (and their wide forms) for the dp4a GEMV formats
    // and the E2M1 and 4-bit integer codes.
    let multi = MATMUL_FORMATS.iter().filter(|&&f| dp4a_multi(f)).count();
    assert_eq!(multi, DP4A_FORMATS.len() + 13);
    assert_eq!(
        specs.len(),
        MATMUL_FORMATS.len() * 11 - trellis
            + DP4A_FORMATS.len()
            + 4 * multi
            + single
            + 1 // attn_paged_gqa
            + fused
            + wide
            + (1 + n_fused) * deep
            + MATMUL_FORMATS.len() // moe_gemv_multi (trellis: on the tiles of Q)
            // moe_gemv_norm, moe_gemv_silu and moe_gemv_silu_combine, and the narrow forms
            // of all four MoE GEMVs
            + 7 * (MATMUL_FORMATS.len() - trellis)
            // the f16 tile GEMV and MoE GEMV, and their forms applying the input side
            + 4 * trellis
            // dp4a moe_gemv, moe_gemv_norm, moe_gemv_silu, moe_gemv_silu_combine, and
            // their wide forms
            + 8 * DP4A_FORMATS.len()
            + 4 * MATMUL_FORMATS.len() // moe_gemm, four token tiles
    );
    for name in [
        "rms_norm",
        "add_rms_norm",
        "rope_normal",
        "rope_neox",
        "silu_mul",
        "moe_hadamard_swiglu",
        "gelu_tanh_mul",
        "add",
        "kv_write",
        "attn_paged",
        "argmax",
        "gemm_splitk_reduce",
        "embed_q8_0",
        "embed_q6_k",
    ] {
        assert!(
            specs.iter().any(|s| s.name == name),
            "{name} not registered"
        );
    }
    for spec in &specs {
        let (module, info) = validate(spec);
        if spec.key.variant.is_coop() {
            // Vulkan only (16x16 tiles; Metal's simdgroup matrices are 8x8): check SPIR-V.
            let words = naga::back::spv::write_vec(
                &module,
                &info,
                &naga::back::spv::Options::default(),
                None,
            )
            .unwrap_or_else(|e| panic!("{}: SPIR-V: {e}", spec.name));
            assert!(words.len() > 100, "{}: empty SPIR-V", spec.name);
            continue;
        }
        let options = naga::back::msl::Options {
            lang_version: (2, 4),
            ..Default::default()
        };
        let (msl, _) = naga::back::msl::write_string(
            &module,
            &info,
            &options,
            &naga::back::msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{}: MSL: {e}", spec.name));
        assert!(
            msl.contains(&spec.name),
            "{}: entry point missing from MSL",
            spec.name
        );
    }
}

fn u32_constant(module: &naga::Module, name: &str) -> Option<u32> {
    let (_, c) = module
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))?;
    match module.global_expressions[c.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => Some(v),
        _ => None,
    }
}

#[test]
fn geometry_and_bindings_match_the_launcher() {
    for spec in all_specs() {
        let (module, _) = validate(&spec);
        let ep = module
            .entry_points
            .iter()
            .find(|e| e.name == spec.name)
            .unwrap_or_else(|| panic!("{}: no entry point of that name", spec.name));
        assert_eq!(
            ep.workgroup_size,
            [spec.workgroup_size, 1, 1],
            "{}",
            spec.name
        );
        let op_wg = [("WG", spec.workgroup_size)];
        let gemv = [
            ("WG", GEMV_WG),
            ("NR", gemv_rows(spec.key.format, spec.key.variant)),
        ];
        let multi = [
            ("WG", GEMV_WG),
            ("NR", gemv_multi_rows(spec.key.variant)),
            ("MT", gemv_multi_tokens()),
        ];
        let (tm, tn) = gemm_tile(spec.key.variant);
        let coop = [("WG", GEMM_COOP_WG), ("TM", tm), ("TN", tn)];
        // The trellis tile GEMV's rows follow the weight's columns (trellis_tile_rows).
        let tile = matches!(spec.key.op, Op::Gemv | Op::GemvHadamard)
            && spec.key.format.is_trellis()
            && spec.key.variant == Variant::F16;
        let expect: &[(&str, u32)] = match spec.key.op {
            Op::Gemv | Op::GemvHadamard if tile => &op_wg,
            op if op == Op::Gemv || op.is_fused_gemv() => &gemv,
            Op::GemvMulti | Op::MoeGemvMulti => &multi,
            Op::Gemm if spec.key.variant.is_coop() => &coop,
            Op::Gemm => &[("WG", GEMM_WG), ("TM", GEMM_ROWS), ("TN", GEMM_TOKENS)],
            _ => &op_wg,
        };
        for &(name, value) in expect {
            assert_eq!(
                u32_constant(&module, name),
                Some(value),
                "{}: const {name}",
                spec.name
            );
        }
        if Op::MATMUL.contains(&spec.key.op) {
            let rows = if tile { 16 } else { expect[1].1 };
            assert_eq!(spec.rows_per_group, rows, "{}", spec.name);
            if spec.key.op == Op::Gemm {
                assert_eq!(spec.tokens_per_group, expect[2].1, "{}", spec.name);
            }
            if spec.key.op == Op::GemvMulti {
                assert_eq!(spec.tokens_per_group, gemv_multi_tokens(), "{}", spec.name);
            }
            assert_eq!(spec.layout, BindLayout::Matmul, "{}", spec.name);
        }
        let mut bound: Vec<(u32, naga::AddressSpace)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| g.binding.as_ref().map(|b| (b, g.space)))
            .map(|(b, space)| {
                assert_eq!(b.group, 0, "{}", spec.name);
                (b.binding, space)
            })
            .collect();
        bound.sort_by_key(|(b, _)| *b);
        assert_eq!(
            bound.len(),
            1 + spec.layout.storage().len(),
            "{}",
            spec.name
        );
        assert_eq!(bound[0], (0, naga::AddressSpace::Uniform), "{}", spec.name);
        for (i, &read_only) in spec.layout.storage().iter().enumerate() {
            let (binding, space) = bound[i + 1];
            assert_eq!(binding, i as u32 + 1, "{}", spec.name);
            let naga::AddressSpace::Storage { access } = space else {
                panic!("{}: binding {binding} is not storage", spec.name);
            };
            let want = if read_only {
                naga::StorageAccess::LOAD
            } else {
                naga::StorageAccess::LOAD | naga::StorageAccess::STORE
            };
            assert_eq!(access, want, "{}: binding {binding}", spec.name);
        }
    }
}

fn files_on_disk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read shaders dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_on_disk(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            let rel = path.strip_prefix(root).expect("prefix");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn shader_table_matches_disk_and_every_file_is_used() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shaders");
    let mut disk = BTreeSet::new();
    files_on_disk(&root, &root, &mut disk);
    let table: BTreeSet<String> = SHADER_FILES.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(disk, table, "src/shaders/ and shaders.rs disagree");
    for (path, src) in SHADER_FILES {
        let on_disk = std::fs::read_to_string(root.join(path)).expect("read shader");
        assert_eq!(&on_disk, src, "{path}: embedded copy is stale");
    }
    let used: BTreeSet<String> = all_specs().into_iter().flat_map(|s| s.parts).collect();
    for path in &table {
        assert!(used.contains(path), "{path} is used by no kernel");
    }
}

/// The chunked coop body's K-major weight tile (`MARLIN_GPU_COOP_KMAJOR=1`) validates and
/// emits SPIR-V for every format and tile; the default coop kernels are the row-major one.
#[test]
fn coop_alternatives_validate_for_every_format() {
    // The K-major weight tile (MARLIN_GPU_COOP_KMAJOR=1) of every tile and format.
    for &format in MATMUL_FORMATS.iter() {
        for variant in [Variant::CoopT16, Variant::CoopT32, Variant::Coop] {
            let spec = coop_chunk_spec(format, variant, true).expect("k-major coop spec");
            let (module, info) = validate(&spec);
            assert_eq!(u32_constant(&module, "WKM"), Some(1), "{}", spec.name);
            let opts = naga::back::spv::Options::default();
            let words = naga::back::spv::write_vec(&module, &info, &opts, None)
                .unwrap_or_else(|e| panic!("{} k-major: SPIR-V: {e}", spec.name));
            assert!(words.len() > 100, "{}: empty SPIR-V", spec.name);
        }
    }
    {
        let chunked = all_specs()
            .into_iter()
            .filter(|s| s.key.variant.is_coop() && s.key.op == Op::Gemm)
            .all(|s| {
                s.parts
                    .iter()
                    .any(|p| p == "gemm/gemm_body_coop_chunk.wgsl")
            });
        assert!(chunked, "every coop GEMM runs the chunked body by default");
    }
}
