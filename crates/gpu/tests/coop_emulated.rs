//! The coop GEMM bodies on lavapipe, which lacks cooperative matrices: each kernel's WGSL
//! with its cooperative-matrix operations rewritten into plain per-thread emulation (each
//! lane of a 32-thread "subgroup" computes 8 elements of every 16x16 tile), run against the f64
//! reference. This checks everything but the tensor-core instructions themselves: tiling,
//! K chunks and slices, staging, barriers, bounds and the partial-sum reduction. The
//! emulation follows naga's conventions (`coopLoadT` row major, `coopLoad` / `coopStore`
//! column major). The same kernels pass `coop_parity` on an H200's tensor cores.

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::coop_chunk_spec;
use marlin_gpu::wgpu;
use marlin_gpu::{read_f32, upload_f32, GpuContext, GpuWeight, Variant};
use testkit::{assert_sentinels, guarded, nmse, random_vec, random_weight, rng, GUARD};

/// Emulated accumulators: lane l of a 32-thread "subgroup" holds elements l * 8 .. + 8 of
/// the 16x16 tile (element (i, j) = index i * 16 + j). A and B fragments are kept as
/// (offset, stride, row major?) into their workgroup arrays (`a`, `b`) and read when
/// multiplied: both bodies multiply them before the next barrier, while the arrays still
/// hold what was loaded. A is rows x k, B k x tokens; row major: (i, j) at off + i ld + j,
/// column major: at off + j ld + i.
fn emu_common(a: &str, b: &str) -> String {
    format!(
        "
alias EmuM = array<f32, 8>;
struct EmuF {{ off: u32, ld: u32, rm: u32 }}
var<private> emu_lane: u32;
fn emu_at(f: EmuF, i: u32, j: u32) -> u32 {{
    if (f.rm == 1u) {{
        return f.off + i * f.ld + j;
    }}
    return f.off + j * f.ld + i;
}}
fn emu_mma(fa: EmuF, fb: EmuF, c: EmuM) -> EmuM {{
    var r = c;
    for (var q = 0u; q < 8u; q++) {{
        let e = emu_lane * 8u + q;
        let i = e / 16u;
        let j = e % 16u;
        var s = 0.0;
        for (var k = 0u; k < 16u; k++) {{
            s += f32({a}[emu_at(fa, i, k)]) * f32({b}[emu_at(fb, k, j)]);
        }}
        r[q] += s;
    }}
    return r;
}}
"
    )
}

/// The fragment load `tag` (`ar`, `ac`, `br`, `bc`: role, row or column major) from `name`.
fn emu_load(tag: &str, name: &str) -> String {
    let rm = u32::from(tag.ends_with('r'));
    format!(
        "
fn emu_{tag}_{name}(off: u32, ld: u32) -> EmuF {{
    return EmuF(off, ld, {rm}u);
}}
"
    )
}

/// Column-major store (`coopStore`) into the f32 array `a`: each lane its own elements.
fn emu_store(a: &str) -> String {
    format!(
        "
fn emu_st_{a}(c: EmuM, off: u32, ld: u32) {{
    for (var q = 0u; q < 8u; q++) {{
        let e = emu_lane * 8u + q;
        {a}[off + (e % 16u) * ld + e / 16u] = c[q];
    }}
}}
"
    )
}

/// Index of the bracket or parenthesis closing the one opened just before `from`.
fn closing(s: &str, from: usize, open: u8, close: u8) -> usize {
    let mut depth = 1;
    for (i, &b) in s.as_bytes()[from..].iter().enumerate() {
        if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return from + i;
            }
        }
    }
    panic!("unbalanced {} in shader", open as char);
}

/// Rewrite every `PREFIX&name[offset], stride)` into `emu_<tag>_name(offset, stride)`;
/// for stores the prefix is `coopStore(` and the matrix argument comes first.
fn rewrite(src: &str, prefix: &str, tag: &str, store: bool, arrays: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        let args = at + prefix.len();
        let end = closing(rest, args, b'(', b')');
        let inner = &rest[args..end];
        let (mat, ptr) = match store {
            true => {
                let comma = inner
                    .find(", &")
                    .expect("coopStore(matrix, &array[..], stride)");
                (format!("{}, ", &inner[..comma]), &inner[comma + 2..])
            }
            false => (String::new(), inner),
        };
        let ptr = ptr.strip_prefix('&').expect("pointer argument");
        let lb = ptr.find('[').expect("indexed array");
        let name = &ptr[..lb];
        let rb = closing(ptr, lb + 1, b'[', b']');
        let stride = ptr[rb + 1..].trim_start_matches(',').trim();
        out.push_str(&format!(
            "emu_{tag}_{name}({mat}{}, {stride})",
            &ptr[lb + 1..rb]
        ));
        if !arrays.iter().any(|a| a == &format!("{tag}:{name}")) {
            arrays.push(format!("{tag}:{name}"));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `spec_src` (a coop kernel's module) with its cooperative-matrix code emulated.
fn emulate(spec_src: &str) -> String {
    // Comments out first: they mention the operations by name.
    let bare: String = spec_src
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut src = bare
        .replace("enable wgpu_cooperative_matrix;", "")
        .replace("coop_mat16x16<f32, C>()", "EmuM()")
        .replace("coop_mat16x16<f32, C>", "EmuM")
        .replace("coopMultiplyAdd(", "emu_mma(")
        .replace("ids.sg", "(ids.lid / 32u)")
        .replace("@builtin(subgroup_invocation_id) lane: u32,", "")
        .replace("@builtin(subgroup_id) sg: u32,", "")
        .replace("@builtin(num_subgroups) nsg: u32,", "");
    let mut arrays = Vec::new();
    for (prefix, tag) in [
        ("coopLoadT<coop_mat16x16<f16, A>>(", "ar"),
        ("coopLoad<coop_mat16x16<f16, A>>(", "ac"),
        ("coopLoadT<coop_mat16x16<f16, B>>(", "br"),
        ("coopLoad<coop_mat16x16<f16, B>>(", "bc"),
    ] {
        src = rewrite(&src, prefix, tag, false, &mut arrays);
    }
    src = rewrite(&src, "coopStore(", "st", true, &mut arrays);
    // Fragment variables declared before their (conditional) loads.
    src = src
        .replace("coop_mat16x16<f16, A>", "EmuF")
        .replace("coop_mat16x16<f16, B>", "EmuF");
    for left in ["coop_mat", "coopLoad", "coopStore", "coopMultiply"] {
        assert!(!src.contains(left), "unemulated {left} left");
    }
    // One array per role: A fragments from the weight tile, B from the activations.
    let of = |tags: &[&str]| -> String {
        let mut names: Vec<&str> = arrays
            .iter()
            .filter_map(|a| a.split_once(':'))
            .filter(|(t, _)| tags.contains(t))
            .map(|(_, n)| n)
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 1, "{tags:?} arrays: {names:?}");
        names[0].to_string()
    };
    let (a, b, c) = (of(&["ar", "ac"]), of(&["br", "bc"]), of(&["st"]));
    src = src.replace(
        "fn gemm_run(ids: Ids) {",
        "fn gemm_run(ids: Ids) {\n    emu_lane = ids.lid % 32u;",
    );
    src.push_str(&emu_common(&a, &b));
    src.push_str(&emu_store(&c));
    for (tag, name) in arrays.iter().filter_map(|a| a.split_once(':')) {
        if tag != "st" {
            src.push_str(&emu_load(tag, name));
        }
    }
    src
}

/// Run the emulated kernel of `spec_src` (tile `tile`) on a random weight and compare.
fn run(
    ctx: &GpuContext,
    src: &str,
    name: &str,
    tile: (u32, u32),
    c: (QuantFormat, usize, usize, usize),
) {
    let (format, rows, cols, n) = c;
    let what = format!("{name} emulated tile {tile:?} [{rows}x{cols}] n={n}");
    let seed = (rows * 31 + cols * 3 + n) as u64;
    let t = random_weight(format, rows, cols, seed);
    let x = random_vec(&mut rng(seed ^ 0x5EED), n * cols);
    let want = reference::matmul(&t.to_f32().expect("dequantize"), &x, rows, cols, n);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    assert_eq!(w.chunks.len(), 1, "{what}: one chunk");
    let chunk = &w.chunks[0];
    let xb = upload_f32(ctx, &x).expect("x");
    let stride = rows + 3;
    let out_len = (n - 1) * stride + rows;
    let ob = upload_f32(ctx, &guarded(out_len)).expect("out");
    let params: [u32; 8] = [
        rows as u32,
        cols as u32,
        n as u32,
        0,
        stride as u32,
        chunk.meta_offset_words,
        0,
        GUARD as u32,
    ];
    let pb = upload_u32(ctx, &params);
    let tc = std::time::Instant::now();
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
    let pipe = ctx
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some(name),
            compilation_options: Default::default(),
            cache: None,
        });
    eprintln!("{what}: compiled in {:?}", tc.elapsed());
    let bufs = [&pb, &chunk.buffer, &*xb, &*ob];
    let entries: Vec<wgpu::BindGroupEntry> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let bg = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipe.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipe);
        pass.set_bind_group(0, &bg, &[]);
        let gx = rows.div_ceil(tile.0 as usize) as u32;
        let gy = n.div_ceil(tile.1 as usize) as u32;
        pass.dispatch_workgroups(gx, gy, 1);
    }
    let t0 = std::time::Instant::now();
    ctx.queue.submit([enc.finish()]);
    let all = read_f32(ctx, &ob, 0, out_len + 2 * GUARD).expect("read");
    assert_sentinels(&all, (0..GUARD).chain(GUARD + out_len..all.len()), &what);
    let mut got = Vec::with_capacity(n * rows);
    for tok in 0..n {
        let base = GUARD + tok * stride;
        got.extend_from_slice(&all[base..base + rows]);
        if tok + 1 < n {
            assert_sentinels(&all, base + rows..base + stride, &what);
        }
    }
    let bad: Vec<(usize, usize)> = got
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .map(|(i, _)| (i / rows, i % rows))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} unwritten (token, row), first {:?}",
        bad.len(),
        &bad[..bad.len().min(8)]
    );
    let e = nmse(&got, &want);
    eprintln!("{what}: nmse {e:e} ({:?})", t0.elapsed());
    // f16 weights and activations, f32 sums: as the F16 / Coop rows of the NMSE table.
    assert!(e <= 2e-6, "{what}: NMSE {e:e}");
}

fn upload_u32(ctx: &GpuContext, v: &[u32]) -> wgpu::Buffer {
    use marlin_gpu::wgpu::util::DeviceExt;
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(v),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

fn ctx_f16() -> Option<&'static GpuContext> {
    let ctx = testkit::ctx()?;
    if !ctx.features.shader_f16 {
        eprintln!("skipped: the adapter has no SHADER_F16");
        return None;
    }
    Some(ctx)
}

/// The chunked body, each token tile and both weight layouts, against edge shapes: rows
/// past the tile, whole and partial chunks, token counts below, at and past the tile.
#[test]
fn chunked_coop_body_matches_emulated() {
    let Some(ctx) = ctx_f16() else { return };
    let fp4 = QuantFormat::Fp4(marlin_core::Group::G32);
    let cases = [
        (QuantFormat::Q4_0, 37, 160, 5),
        (QuantFormat::Q4_0, 131, 256, 17),
        (QuantFormat::Q4_K, 70, 512, 33),
        (QuantFormat::Q6_K, 33, 256, 1),
        (QuantFormat::F16, 9, 100, 3),
        (QuantFormat::Q8_0, 40, 96, 100),
        (fp4, 20, 96, 64),
    ];
    // The K-major layout only changes the weight staging and A loads: three of the cases.
    for (kmajor, cases) in [(false, &cases[..]), (true, &cases[1..4])] {
        for variant in [Variant::CoopT16, Variant::CoopT32, Variant::Coop] {
            for &(format, rows, cols, n) in cases {
                let s = coop_chunk_spec(format, variant, kmajor).expect("coop spec");
                let src = emulate(&s.source().expect("source"));
                let tile = (s.rows_per_group, s.tokens_per_group);
                run(ctx, &src, &s.name, tile, (format, rows, cols, n));
            }
        }
    }
}
