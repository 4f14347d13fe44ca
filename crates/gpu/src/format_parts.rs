//! Which shader files and constants decode each weight format in the matmul and embed
//! kernels (`shaders/formats/`), and the entry points of formats whose kernels share files.

use marlin_core::QuantFormat;

use crate::layout_marlin::unit_geom;

/// Format-decoding files for `format` (shared helpers first), or `None` without kernels.
pub fn format_parts(format: QuantFormat) -> Option<Vec<String>> {
    use QuantFormat as F;
    let mut v: Vec<String> = match format {
        F::F32 | F::F16 | F::BF16 | F::Q4_0 | F::Q4_1 | F::Q5_0 | F::Q5_1 | F::Q8_0 | F::Q6_K => {
            vec![]
        }
        F::MXFP4 => vec!["formats/e2m1_i8.wgsl".into()],
        F::Q4_K | F::Q5_K => vec!["formats/k_scales.wgsl".into()],
        F::Fp4(_) => vec![
            "formats/marlin_common.wgsl".into(),
            "formats/e2m1_i8.wgsl".into(),
        ],
        F::Nvfp4 | F::Fp8 => vec!["formats/marlin_common.wgsl".into()],
        F::Int(_) => vec![
            "formats/marlin_common.wgsl".into(),
            "formats/int_common.wgsl".into(),
        ],
        F::Trellis(_) => vec![],
        _ => return None,
    };
    v.push(format!("formats/{}.wgsl", family(format)));
    Some(v)
}

/// The decode file's stem: the format's name, or its family for parametric formats
/// (`fp4`, `int4`, ... shared by every group size and zero-point choice).
fn family(format: QuantFormat) -> String {
    match format {
        QuantFormat::Fp4(_) => "fp4".into(),
        QuantFormat::Int(i) => format!("int{}", i.bits.bits()),
        QuantFormat::Trellis(_) => "trellis".into(),
        f => f.name().into(),
    }
}

/// Constants the decode files of `format` expect (`GROUP`, `SB`, `ZEROS`; trellis: `BITS`,
/// `CODEBOOK`: 0 3INST, 1 MCG, 2 MUL1).
pub fn format_defines(format: QuantFormat) -> Vec<(&'static str, u32)> {
    if let QuantFormat::Trellis(t) = format {
        use marlin_core::formats::trellis::Codebook;
        let codebook = match t.codebook {
            Codebook::Inst3 => 0,
            Codebook::Mcg => 1,
            Codebook::Mul1 => 2,
        };
        return vec![("BITS", t.k()), ("CODEBOOK", codebook)];
    }
    let Some(g) = unit_geom(format) else {
        return Vec::new();
    };
    let mut v = vec![("GROUP", g.group as u32), ("SB", g.scale_bytes as u32)];
    if let QuantFormat::Int(i) = format {
        v.push(("ZEROS", u32::from(i.zeros)));
    }
    v
}

/// Whether `format`'s kernels have an entry file of their own (`gemv/gemv_q4_0.wgsl`);
/// parametric formats get a generated entry point instead (one name per kernel, as for
/// every other format, without a file per group size).
pub fn has_entry_file(format: QuantFormat) -> bool {
    !format.is_marlin() && !format.is_trellis()
}
