//! Cooperative-matrix emulation for lavapipe, which lacks cooperative matrices: a coop
//! kernel's WGSL with its cooperative-matrix operations rewritten into plain per-thread
//! code (each lane of a 32-thread "subgroup" computes 8 elements of every 16x16 tile). The
//! emulation follows naga's conventions (`coopLoadT` row major, `coopLoad` / `coopStore`
//! column major). Used by coop_emulated.rs and attn_flash_parity.rs.
#![allow(dead_code)]

/// Emulated accumulators: lane l of a 32-thread "subgroup" holds elements l * 8 .. + 8 of
/// the 16x16 tile (element (i, j) = index i * 16 + j). A and B fragments are kept as
/// (offset, stride, row major?) into their workgroup arrays (`a`, `b`) and read when
/// multiplied: every body multiplies them before the next barrier, while the arrays still
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
pub fn emulate(spec_src: &str) -> String {
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
    // One array per role (GEMM: A from the weight tile, B from the activations; attn_flash:
    // A from Q and P, B from K and V).
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
    for run in ["fn gemm_run(ids: Ids) {", "fn attn_flash_run(ids: Ids) {"] {
        src = src.replace(run, &format!("{run}\n    emu_lane = ids.lid % 32u;"));
    }
    src.push_str(&emu_common(&a, &b));
    src.push_str(&emu_store(&c));
    for (tag, name) in arrays.iter().filter_map(|a| a.split_once(':')) {
        if tag != "st" {
            src.push_str(&emu_load(tag, name));
        }
    }
    src
}

use marlin_gpu::wgpu;
use marlin_gpu::{GpuContext, KernelSpec};

/// An emulated coop kernel compiled for the test adapter.
pub struct Emulated {
    pub name: String,
    /// (rows, tokens) per workgroup.
    pub tile: (u32, u32),
    pub pipe: wgpu::ComputePipeline,
}

/// `spec`'s kernel with its cooperative-matrix operations emulated, compiled (bindings
/// from the shader).
pub fn compile(ctx: &GpuContext, spec: &KernelSpec) -> Emulated {
    let src = emulate(&spec.source().expect("source"));
    let name = spec.name.clone();
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
    let pipe = ctx
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&name),
            layout: None,
            module: &module,
            entry_point: Some(&name),
            compilation_options: Default::default(),
            cache: None,
        });
    Emulated {
        name,
        tile: (spec.rows_per_group, spec.tokens_per_group),
        pipe,
    }
}

/// A uniform buffer of `params` words (binding 0 of every kernel).
pub fn upload_params(ctx: &GpuContext, params: &[u32]) -> wgpu::Buffer {
    use marlin_gpu::wgpu::util::DeviceExt;
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// Dispatch `pipe` over `grid` with `bufs` bound in order from binding 0, and submit.
pub fn dispatch(
    ctx: &GpuContext,
    pipe: &wgpu::ComputePipeline,
    bufs: &[&wgpu::Buffer],
    grid: [u32; 3],
) {
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
        pass.set_pipeline(pipe);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
    }
    ctx.queue.submit([enc.finish()]);
}
