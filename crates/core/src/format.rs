//! `QuantFormat`: every weight encoding the engine knows, with its block geometry.
//! GGML types keep their GGUF ids; the metal-marlin formats (see [`crate::marlin_format`])
//! have none.

use crate::formats::trellis::TrellisFormat;
use crate::marlin_format::{block_geom, fp4_name, Group, IntFormat};
use crate::{Error, Result};

/// A weight encoding. GGML types keep their GGUF ids; block geometry is fixed per format.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantFormat {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ4_NL,
    IQ4_XS,
    MXFP4,
    /// E2M1 with an f16 scale per group (metal-marlin, 256-element blocks).
    Fp4(Group),
    /// Integer codes with f16 group scales, symmetric or with u8 zero points.
    Int(IntFormat),
    /// E2M1 with a UE4M3 scale per 16 and an f32 tensor scale.
    Nvfp4,
    /// E4M3 with an f32 scale per 256-element block.
    Fp8,
    /// Bitshift trellis over 16×16 tiles with Hadamard incoherence
    /// (see [`crate::formats::trellis`]); not row-addressable: bytes cover a whole matrix.
    Trellis(TrellisFormat),
}

impl QuantFormat {
    /// Every GGML format, in GGUF id order (see [`QuantFormat::marlin_all`] for ours).
    pub const ALL: [QuantFormat; 18] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q8_1,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::Q8_K,
        Self::IQ4_NL,
        Self::IQ4_XS,
        Self::BF16,
        Self::MXFP4,
    ];

    /// Every metal-marlin format (fp4 groups, integer formats, nvfp4, fp8).
    pub fn marlin_all() -> Vec<Self> {
        let mut v: Vec<Self> = Group::ALL.into_iter().map(Self::Fp4).collect();
        v.extend(IntFormat::all().into_iter().map(Self::Int));
        v.extend([Self::Nvfp4, Self::Fp8]);
        v
    }

    /// Whether this is a row-based metal-marlin format (256-element super-blocks, no GGML
    /// id). Trellis is ours too but tile-based: see [`QuantFormat::is_trellis`].
    pub fn is_marlin(self) -> bool {
        matches!(self, Self::Fp4(_) | Self::Int(_) | Self::Nvfp4 | Self::Fp8)
    }

    /// Whether this is a trellis format (whole-matrix layout, no row access).
    pub fn is_trellis(self) -> bool {
        matches!(self, Self::Trellis(_))
    }

    /// Every trellis format (each width with each codebook).
    pub fn trellis_all() -> Vec<Self> {
        TrellisFormat::all()
            .into_iter()
            .map(Self::Trellis)
            .collect()
    }

    /// The format for a GGUF `ggml_type` id, or `None` for ids we do not handle.
    pub fn from_ggml_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.ggml_id() == Some(id))
    }

    /// The GGUF `ggml_type` id (`None` for metal-marlin formats).
    pub fn ggml_id(self) -> Option<u32> {
        Some(match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q8_1 => 9,
            Self::Q2_K => 10,
            Self::Q3_K => 11,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::Q8_K => 15,
            Self::IQ4_NL => 20,
            Self::IQ4_XS => 23,
            Self::BF16 => 30,
            Self::MXFP4 => 39,
            Self::Fp4(_) | Self::Int(_) | Self::Nvfp4 | Self::Fp8 | Self::Trellis(_) => {
                return None
            }
        })
    }

    /// Stable snake_case name, used in op names, kernel files and bench lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q8_0 => "q8_0",
            Self::Q8_1 => "q8_1",
            Self::Q2_K => "q2_k",
            Self::Q3_K => "q3_k",
            Self::Q4_K => "q4_k",
            Self::Q5_K => "q5_k",
            Self::Q6_K => "q6_k",
            Self::Q8_K => "q8_k",
            Self::IQ4_NL => "iq4_nl",
            Self::IQ4_XS => "iq4_xs",
            Self::MXFP4 => "mxfp4",
            Self::Fp4(g) => fp4_name(g),
            Self::Int(i) => i.name(),
            Self::Nvfp4 => "nvfp4",
            Self::Fp8 => "fp8",
            Self::Trellis(t) => t.name(),
        }
    }

    /// Parse a name as printed by [`QuantFormat::name`] (case-insensitive).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .chain(Self::marlin_all())
            .find(|f| f.name() == s)
            .or_else(|| TrellisFormat::from_name(&s).map(Self::Trellis))
    }

    /// Elements per block.
    pub fn block_elems(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0
            | Self::Q4_1
            | Self::Q5_0
            | Self::Q5_1
            | Self::Q8_0
            | Self::Q8_1
            | Self::IQ4_NL
            | Self::MXFP4 => 32,
            Self::Q2_K
            | Self::Q3_K
            | Self::Q4_K
            | Self::Q5_K
            | Self::Q6_K
            | Self::Q8_K
            | Self::IQ4_XS
            | Self::Fp4(_)
            | Self::Int(_)
            | Self::Nvfp4
            | Self::Fp8
            | Self::Trellis(_) => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q8_1 => 36,
            Self::Q2_K => 84,
            Self::Q3_K => 110,
            Self::Q4_K => 144,
            Self::Q5_K => 176,
            Self::Q6_K => 210,
            Self::Q8_K => 292,
            Self::IQ4_NL => 18,
            Self::IQ4_XS => 136,
            Self::MXFP4 => 17,
            Self::Fp4(_) | Self::Int(_) | Self::Nvfp4 | Self::Fp8 => {
                block_geom(self, 256).map_or(0, |g| g.bytes)
            }
            Self::Trellis(t) => t.tile_bytes(),
        }
    }

    /// Bytes needed for `n` elements (one row); errors when `n` is not whole blocks.
    /// metal-marlin formats need only a multiple of 32: the row ends in a shorter tail
    /// block (see [`crate::marlin_format`]).
    /// Trellis tensors have no per-row bytes (tiles span 16 rows): an error.
    pub fn row_bytes(self, n: usize) -> Result<usize> {
        if self.is_trellis() {
            return Err(Error::Unsupported(
                self.name(),
                "row access (trellis tiles span 16 rows)",
            ));
        }
        if let Some(full) = block_geom(self, 256) {
            let tail = n % 256;
            if !n.is_multiple_of(32) {
                return Err(Error::BlockAlign {
                    format: self.name(),
                    len: n,
                    block: 32,
                });
            }
            let tail_bytes = match tail {
                0 => 0,
                t => block_geom(self, t).map_or(0, |g| g.bytes),
            };
            return (n / 256)
                .checked_mul(full.bytes)
                .and_then(|b| b.checked_add(tail_bytes))
                .ok_or_else(|| Error::Overflow(format!("{} row of {n}", self.name())));
        }
        let be = self.block_elems();
        if !n.is_multiple_of(be) {
            return Err(Error::BlockAlign {
                format: self.name(),
                len: n,
                block: be,
            });
        }
        (n / be)
            .checked_mul(self.block_bytes())
            .ok_or_else(|| Error::Overflow(format!("{} row of {n}", self.name())))
    }

    /// Bits per weight, scales included (trellis: K, without its per-tensor suh/svh).
    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / self.block_elems() as f64
    }
}

impl std::fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for f in QuantFormat::ALL {
            assert_eq!(f.ggml_id().and_then(QuantFormat::from_ggml_id), Some(f));
            assert_eq!(QuantFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(QuantFormat::from_ggml_id(4), None);
        assert_eq!(QuantFormat::Q4_0.row_bytes(64).unwrap(), 36);
        assert!(QuantFormat::Q4_K.row_bytes(100).is_err());
        for f in QuantFormat::marlin_all() {
            assert_eq!(QuantFormat::from_name(f.name()), Some(f));
            assert_eq!(f.ggml_id(), None);
            assert_eq!(f.block_bytes() % 4, 0, "{f}");
        }
    }

    #[test]
    fn marlin_block_sizes() {
        use crate::marlin_format::IntBits;
        let int = |bits, zeros, group| QuantFormat::Int(IntFormat { bits, zeros, group });
        let sizes = [
            (QuantFormat::Fp4(Group::G32), 144),
            (QuantFormat::Fp4(Group::G64), 136),
            (QuantFormat::Fp4(Group::G128), 132),
            (QuantFormat::Fp4(Group::G256), 132),
            (QuantFormat::Nvfp4, 148),
            (QuantFormat::Fp8, 260),
            (int(IntBits::B4, false, Group::G128), 132),
            (int(IntBits::B4, true, Group::G128), 136),
            (int(IntBits::B3, false, Group::G128), 100),
            (int(IntBits::B3, true, Group::G128), 104),
            (int(IntBits::B2, false, Group::G64), 72),
            (int(IntBits::B2, true, Group::G32), 88),
            (int(IntBits::B8, false, Group::G32), 272),
            (int(IntBits::B8, true, Group::G256), 260),
        ];
        for (f, bytes) in sizes {
            assert_eq!(f.block_bytes(), bytes, "{f}");
            assert_eq!(f.block_elems(), 256, "{f}");
        }
        assert_eq!(QuantFormat::marlin_all().len(), 38);
        // 576 = two full blocks and a 64-element tail (32 B nibbles + one f16 scale).
        assert_eq!(
            QuantFormat::Fp4(Group::G128).row_bytes(576).unwrap(),
            2 * 132 + 36
        );
        assert_eq!(QuantFormat::Nvfp4.row_bytes(96).unwrap(), 48 + 6 + 4 + 2);
        assert!(QuantFormat::Fp8.row_bytes(48).is_err());
        assert_eq!(
            QuantFormat::from_name("INT4Z_G128"),
            Some(int(IntBits::B4, true, Group::G128))
        );
    }
}
