//! The trellis GEMV's and MoE GEMV's f16 variant (`gemv_body_trellis.wgsl`): its spec,
//! geometry and the generated part that walks one tile with literal word indices.
//! On an H200 it took a 14336×4096 trellis3 GEMV from 45.3 to 30.2 µs and synthetic
//! Llama-3-8B / GLM-4.7-Flash trellis3 decode from 115.5 / 86.5 to 154.4 / 101.6 tok/s.
//! Giving small weights a quarter tile per thread (more threads) measured slower
//! everywhere (146.4 / 95.0), as did keeping small weights on the f32 kernels.

use std::fmt::Write;

use marlin_core::formats::trellis::Codebook;
use marlin_core::QuantFormat;

use super::{BindLayout, KernelKey, KernelSpec, Variant};
use crate::format_parts::format_defines;
use crate::op::{kernel_name, Op};

const IO_GEMV: &str = "gemv/trellis_io_gemv.wgsl";
const IO_MOE: &str = "gemv/trellis_io_moe.wgsl";
const X_PLAIN: &str = "gemv/trellis_x_plain.wgsl";
const X_HADAMARD: &str = "gemv/trellis_x_hadamard.wgsl";

/// The tile kernel's math part for `codebook`: MUL1's integer values in f32 (no
/// conversions), unless `MARLIN_GPU_TRELLIS_MUL1_F32=0`; the others' f16 halves in packed
/// f16.
fn trellis_math(codebook: Codebook) -> &'static str {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on =
        *ON.get_or_init(|| std::env::var("MARLIN_GPU_TRELLIS_MUL1_F32").map_or(true, |v| v != "0"));
    match codebook {
        Codebook::Mul1 if on => "gemv/trellis_math_f32.wgsl",
        _ => "gemv/trellis_math_f16.wgsl",
    }
}

/// Threads per workgroup of the tile kernel (`WG`).
const TILE_WG: u32 = 256;

/// Threads that share one 16-row tile row of a `cols`-column weight (`tr_tpr` in the
/// shader): one per tile up to the workgroup, rounded down to a power of two.
pub fn trellis_tile_tpr(cols: usize) -> u32 {
    let kt = (cols / 16).max(1);
    if kt >= TILE_WG as usize {
        TILE_WG
    } else {
        1 << kt.ilog2()
    }
}

/// Output rows one workgroup of the tile kernel covers for `cols` columns.
pub fn trellis_tile_rows(cols: usize) -> u32 {
    16 * (TILE_WG / trellis_tile_tpr(cols))
}

/// The spec of `gemv_<trellis format>` or `moe_gemv_<trellis format>` in the f16 variant,
/// or of their `_hadamard` forms (the input side applied in the kernel), or `None` for
/// other keys.
pub fn trellis_tile_spec(key: KernelKey) -> Option<KernelSpec> {
    let QuantFormat::Trellis(t) = key.format else {
        return None;
    };
    const IDS: &str = "@group(0) @binding(4) var<storage, read> moe_ids: array<u32>;\n";
    let suh =
        |b: u32| format!("@group(0) @binding({b}) var<storage, read> suh: array<vec4<f32>>;\n");
    let (io, layout, bindings, x_in) = match key.op {
        Op::Gemv => (IO_GEMV, BindLayout::Matmul, String::new(), X_PLAIN),
        Op::MoeGemv => (IO_MOE, BindLayout::MatmulIds, IDS.to_string(), X_PLAIN),
        Op::GemvHadamard => (IO_GEMV, BindLayout::MatmulSide, suh(4), X_HADAMARD),
        Op::MoeGemvHadamard => (
            IO_MOE,
            BindLayout::MatmulIdsSide,
            IDS.to_string() + &suh(5),
            X_HADAMARD,
        ),
        _ => return None,
    };
    let mut features = wgpu::Features::SHADER_F16;
    if x_in == X_HADAMARD {
        features |= wgpu::Features::SUBGROUP;
    }
    if key.variant != Variant::F16 {
        return None;
    }
    let name = kernel_name(key.op, key.format);
    let mut entry = bindings;
    entry.push_str(&tile_source(t.k()));
    entry.push_str(&format!(
        "@compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    gemv_trellis_run(ids);\n}}\n"
    ));
    // f16 math measured faster than the same tiling with f32 math (values converted, f32
    // products): H200, 14336×4096, trellis3 29.2 against 34.5 µs, trellis4 29.1 against 34.8.
    let parts = [
        "common/enable_f16.wgsl",
        "common/matmul_io.wgsl",
        "common/out_plain.wgsl",
        "common/matmul_uniform.wgsl",
        "common/ids_plain.wgsl",
        io,
        x_in,
        trellis_math(t.codebook),
        "gemv/gemv_body_trellis.wgsl",
    ];
    Some(KernelSpec {
        key,
        name,
        parts: parts.map(String::from).to_vec(),
        workgroup_size: TILE_WG,
        // The launchers ask trellis_tile_rows: the rows follow the weight's columns.
        rows_per_group: 16,
        tokens_per_group: 1,
        layout,
        features,
        defines: format_defines(key.format),
        entry,
    })
}

/// The generated part for `bits`-wide streams: `tr_tile`, which loads the tile's vec4
/// words as named values, then adds each row from the four words holding its
/// 15 * bits + 16 stream bits, at a literal offset (indices into a register array that are
/// not literals would send it to memory), and `tr_store` of the 16 partial sums.
fn tile_source(bits: u32) -> String {
    let mut s = tile_fn(bits, "tr_tile", 0..16);
    s.push_str("fn tr_store(acc: array<f32, 16>, lid: u32) {\n");
    for r in 0..16 {
        let _ = writeln!(s, "    part[{r}u * WG + lid] = acc[{r}];");
    }
    s.push_str("}\n\n");
    s
}

/// `fn name` adding `rows` of the tile at vec4 `base` into acc[0..] (acc[i] for row
/// rows.start + i).
fn tile_fn(bits: u32, name: &str, rows: std::ops::Range<u32>) -> String {
    let words = 8 * bits;
    let stream = 256 * bits;
    let w = |i: u32| {
        let i = i % words;
        format!("q{}.{}", i / 4, ["x", "y", "z", "w"][(i % 4) as usize])
    };
    let mut body = String::new();
    let mut used = std::collections::BTreeSet::new();
    for (slot, r) in rows.enumerate() {
        let start = (16 * r * bits + bits + stream - 16) % stream;
        let (i, off) = (start / 32, start % 32);
        used.extend((i..i + 4).map(|j| (j % words) / 4));
        let _ = writeln!(
            body,
            "    (*acc)[{slot}] = fma(tr_row({}, {}, {}, {}, {off}u, xh), inv, (*acc)[{slot}]);",
            w(i),
            w(i + 1),
            w(i + 2),
            w(i + 3)
        );
    }
    let mut s =
        format!("fn {name}(base: u32, xh: XH, inv: f32, acc: ptr<function, array<f32, 16>>) {{\n");
    for v in used {
        let _ = writeln!(s, "    let q{v} = w[base + {v}u];");
    }
    s.push_str(&body);
    s.push_str("}\n\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_per_tile_row_follow_the_columns() {
        assert_eq!(trellis_tile_tpr(16), 1);
        assert_eq!(trellis_tile_tpr(80), 4);
        assert_eq!(trellis_tile_tpr(2048), 128);
        assert_eq!(trellis_tile_tpr(4096), 256);
        assert_eq!(trellis_tile_tpr(14336), 256);
        assert_eq!(trellis_tile_rows(2048), 32);
        assert_eq!(trellis_tile_rows(768), 128);
    }

    #[test]
    fn rows_read_the_words_that_hold_their_bits() {
        // 3 bits: row 0 starts 13 bits before the stream's end (tail-biting), word 23.
        let s = tile_source(3);
        assert!(s.contains("(*acc)[0] = fma(tr_row(q5.w, q0.x, q0.y, q0.z, 19u, xh)"));
        // Row 1 starts at bit 48 - 13 = 35: word 1, offset 3.
        assert!(s.contains("(*acc)[1] = fma(tr_row(q0.y, q0.z, q0.w, q1.x, 3u, xh)"));
        assert!(s.contains("let q5 = w[base + 5u];"));
        assert!(!s.contains("q6"));
        // Rows 4..8 alone (bits 179 .. 179 + 3 * 48 + 61) load words 4..15 only.
        let q1 = tile_fn(3, "rows", 4..8);
        assert!(q1.contains("let q1 = w[base + 1u];") && q1.contains("let q3 = w[base + 3u];"));
        assert!(!q1.contains("let q0 ") && !q1.contains("let q4 "));
        assert!(q1.contains("(*acc)[0] = fma(tr_row("));
    }
}
