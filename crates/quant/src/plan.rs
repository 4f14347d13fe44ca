//! Which format, method and rotation every tensor gets: the `--format` default for block
//! linears, a mixed-precision preset, then `--override 'REGEX=FORMAT[:G]'` rules (last
//! match wins). Tensors whose inputs a format cannot tile stay F16.

use marlin_core::{hadamard, Group, IntBits, IntFormat, QuantFormat};
use regex::Regex;

use crate::export::Role;
use crate::{Error, Result};

/// Quantization method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Rtn,
    Gptq,
    MrGptq,
}

impl Method {
    /// Parse `rtn`, `gptq` or `mr-gptq`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "rtn" => Ok(Method::Rtn),
            "gptq" => Ok(Method::Gptq),
            "mr-gptq" | "mrgptq" => Ok(Method::MrGptq),
            o => Err(Error::Invalid(format!("method `{o}` (rtn, gptq, mr-gptq)"))),
        }
    }

    /// Stable name (as written to the checkpoint).
    pub fn name(self) -> &'static str {
        match self {
            Method::Rtn => "rtn",
            Method::Gptq => "gptq",
            Method::MrGptq => "mr-gptq",
        }
    }
}

/// Mixed-precision presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Block linears at FORMAT, embeddings/LM head int8 g128.
    Dense,
    /// As `dense`, plus attention (GQA or MLA) and the shared expert at int8 g128: only the
    /// routed experts (and dense MLPs) at FORMAT. Routers always stay F32.
    Moe,
    /// As `dense`, plus v/o/down (the most sensitive projections) at int8 g128.
    Quality,
    /// Everything, embeddings and LM head included, at FORMAT.
    Speed,
}

impl Preset {
    /// Parse `dense`, `moe`, `quality`, `speed`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "dense" => Ok(Preset::Dense),
            "moe" => Ok(Preset::Moe),
            "quality" => Ok(Preset::Quality),
            "speed" => Ok(Preset::Speed),
            o => Err(Error::Invalid(format!(
                "mixed-precision preset `{o}` (dense, moe, quality, speed)"
            ))),
        }
    }
}

/// A target: a quantized format, or `None` = keep as F16.
pub type Target = Option<QuantFormat>;

/// Parse a CLI format name: `fp4`, `mxfp4`, `nvfp4`, `fp8`, `int8|int4|int3|int2` (with a
/// `z` suffix for zero points), a full name (`fp4_g64`, `int4z_g128`), or `f16` (keep
/// float). `group` applies to fp4 and integer formats.
pub fn parse_format(s: &str, group: usize) -> Result<Target> {
    let bad = || Error::Invalid(format!("format `{s}`"));
    let g = Group::from_size(group)
        .ok_or_else(|| Error::Invalid(format!("group size {group} (32, 64, 128, 256)")))?;
    let s = s.to_ascii_lowercase();
    if let Some(f) = QuantFormat::from_name(&s).filter(|f| f.is_marlin() || f.is_trellis()) {
        return Ok(Some(f));
    }
    Ok(Some(match s.as_str() {
        "f16" | "bf16" | "f32" | "none" => return Ok(None),
        "fp4" => QuantFormat::Fp4(g),
        "mxfp4" => QuantFormat::MXFP4,
        "nvfp4" => QuantFormat::Nvfp4,
        "fp8" => QuantFormat::Fp8,
        _ => {
            let rest = s.strip_prefix("int").ok_or_else(bad)?;
            let (digits, zeros) = match rest.strip_suffix('z') {
                Some(d) => (d, true),
                None => (rest, false),
            };
            let bits = digits.parse::<u32>().ok().and_then(IntBits::from_bits);
            let bits = bits.ok_or_else(bad)?;
            QuantFormat::Int(IntFormat {
                bits,
                zeros,
                group: g,
            })
        }
    }))
}

/// An override rule `REGEX=FORMAT[:G]`.
#[derive(Debug, Clone)]
pub struct Override {
    pub re: Regex,
    pub target: Target,
}

impl Override {
    /// Parse one `--override` value.
    pub fn parse(s: &str, default_group: usize) -> Result<Self> {
        let (re, fmt) = s
            .rsplit_once('=')
            .ok_or_else(|| Error::Invalid(format!("override `{s}` (want REGEX=FORMAT[:G])")))?;
        let (fmt, group) = match fmt.split_once(':') {
            Some((f, g)) => (
                f,
                g.parse()
                    .map_err(|_| Error::Invalid(format!("override group `{g}`")))?,
            ),
            None => (fmt, default_group),
        };
        let re = Regex::new(re).map_err(|e| Error::Invalid(format!("override regex: {e}")))?;
        Ok(Self {
            re,
            target: parse_format(fmt, group)?,
        })
    }
}

/// The per-tensor choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorChoice {
    pub target: Target,
    pub method: Method,
    /// Block-Hadamard size (0 = none).
    pub hadamard: usize,
}

/// Everything the planner needs.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub format: QuantFormat,
    pub method: Method,
    /// Requested rotation (0 = none; MR-GPTQ defaults to the scale group, at most 128).
    pub hadamard: usize,
    pub preset: Option<Preset>,
    pub overrides: Vec<Override>,
}

fn int8_g128() -> QuantFormat {
    QuantFormat::Int(IntFormat {
        bits: IntBits::B8,
        zeros: false,
        group: Group::G128,
    })
}

/// Largest power of two ≤ `want` that divides `cols` (0 when below 2).
fn fit_rotation(want: usize, cols: usize) -> usize {
    if want < 2 {
        return 0;
    }
    let mut b = 1usize << (usize::BITS - 1 - want.leading_zeros());
    while b >= 2 && !cols.is_multiple_of(b) {
        b /= 2;
    }
    if hadamard::valid_block(b) {
        b
    } else {
        0
    }
}

/// Choose the target of tensor `name` (`role`, `[rows, cols]`).
pub fn choose(o: &PlanOptions, name: &str, role: Role, cols: usize) -> TensorChoice {
    let mut target = match (role, o.preset) {
        (Role::Vector | Role::Router, _) => None,
        (Role::Embed | Role::LmHead, Some(Preset::Speed)) => Some(o.format),
        (Role::Embed | Role::LmHead, Some(_)) => Some(int8_g128()),
        (Role::Embed | Role::LmHead, None) => None,
        (Role::V | Role::O | Role::Down, Some(Preset::Quality)) => Some(int8_g128()),
        (
            Role::Q
            | Role::K
            | Role::V
            | Role::O
            | Role::QA
            | Role::QB
            | Role::KvA
            | Role::KvB
            | Role::Shared(_),
            Some(Preset::Moe),
        ) => Some(int8_g128()),
        _ => Some(o.format),
    };
    if !role.is_f32() {
        for ov in &o.overrides {
            if ov.re.is_match(name) {
                target = ov.target;
            }
        }
    }
    // A format that cannot tile the row stays float.
    // (Trellis needs whole 16×16 tiles: checked with the shape by `trellis::hook::fit`.)
    let target = target.filter(|f| f.is_trellis() || f.row_bytes(cols).is_ok());
    // Embeddings have no calibration inputs: RTN.
    let method = if role.is_block_linear() {
        o.method
    } else {
        Method::Rtn
    };
    let want = match (o.hadamard, o.method) {
        (0, Method::MrGptq) => target
            .and_then(marlin_core::formats::scale_group)
            .unwrap_or(0)
            .clamp(0, 128),
        (h, _) => h,
    };
    // The loader cuts `kv_b_proj` into per-head W_UK / W_UV slices and transposes W_UK,
    // neither of which keeps a rotation: MLA's kv_b is never rotated.
    let rotatable = role.is_block_linear() && role != Role::KvB;
    let hadamard = if target.is_some() && rotatable && want > 0 {
        fit_rotation(want, cols)
    } else {
        0
    };
    TensorChoice {
        target,
        method,
        hadamard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_overrides_and_rotation_fit() {
        let f = parse_format("int4z", 64).unwrap().unwrap();
        assert_eq!(f.name(), "int4z_g64");
        assert_eq!(
            parse_format("fp4", 128).unwrap().unwrap().name(),
            "fp4_g128"
        );
        assert_eq!(parse_format("f16", 128).unwrap(), None);
        assert!(parse_format("int5", 128).is_err());
        assert!(parse_format("fp4", 100).is_err());
        let o = PlanOptions {
            format: QuantFormat::Fp4(Group::G128),
            method: Method::MrGptq,
            hadamard: 0,
            preset: Some(Preset::Dense),
            overrides: vec![Override::parse(r"layers\.0\..*down=int8:32", 128).unwrap()],
        };
        let c = choose(&o, "model.layers.0.mlp.down_proj.weight", Role::Down, 1536);
        assert_eq!(c.target.unwrap().name(), "int8_g32");
        // 576 inputs: the 128 rotation does not tile, 64 does.
        let c = choose(&o, "model.layers.3.self_attn.q_proj.weight", Role::Q, 576);
        assert_eq!((c.target.unwrap().name(), c.hadamard), ("fp4_g128", 64));
        let c = choose(&o, "model.embed_tokens.weight", Role::Embed, 576);
        assert_eq!(
            (c.target.unwrap().name(), c.method, c.hadamard),
            ("int8_g128", Method::Rtn, 0)
        );
        assert_eq!(fit_rotation(16, 96), 16);
        assert_eq!(fit_rotation(128, 48), 16);
    }
}
