//! Geometry of the metal-marlin weight formats (our own checkpoints, not GGML types).
//!
//! Every metal-marlin format stores weights in **256-element super-blocks** along a row
//! (the input dimension K). A super-block's byte size is a multiple of 4 and its layout is
//! *planar*: all packed codes first, then the scales (then the zero points), then padding.
//! A GPU thread therefore reads codes with aligned 32-bit loads, and code word `w` of a block
//! holds consecutive elements, lowest bits first.
//!
//! | name | codes | then | bytes/256 | bpw |
//! |---|---|---|---|---|
//! | `fp4_g32/64/128/256` | 128 B E2M1 nibbles | f16 scale per group (8/4/2/1) | 144/136/132/132 | 4.5/4.25/4.125/4.125 |
//! | `nvfp4` | 128 B E2M1 nibbles | 16 UE4M3 scale bytes (one per 16), f32 tensor scale | 148 | 4.625 |
//! | `fp8` | 256 B E4M3 | f32 scale | 260 | 8.125 |
//! | `int{8,4,3,2}_gG` | 256/128/96/64 B | f16 scale per group | e.g. int4_g128: 132 | |
//! | `int{8,4,3,2}z_gG` | same codes | f16 scales, then u8 zero point per group | e.g. int4z_g128: 136 | |
//!
//! A row whose length is not a multiple of 256 ends in one shorter **tail block** (its
//! length a multiple of 32) laid out by the same rule for its own element count: codes,
//! then `ceil(n/G)` scales (the last group may be partial), zeros, nvfp4's tensor scale,
//! padding to 4 bytes. SmolLM2's 576-wide rows are two full blocks and a 64-element tail.
//! Because of tails, packed data is decoded row by row.
//!
//! Code packing: 4-bit codes two per byte, element 2i in the low nibble of byte i (so u32
//! word w nibble k is element 8w+k); 2-bit codes four per byte (element 4i+k at bits 2k);
//! 8-bit codes one per byte; 3-bit codes as two planes — 64 bytes of low 2 bits packed like
//! 2-bit codes, then 32 bytes of high bits (element 8i+k at bit k of byte i).
//!
//! Decoding: fp4 `y = E2M1[c]·s`; nvfp4 `y = E2M1[c]·(UE4M3(s)·g)` with `g` the f32 tensor
//! scale (repeated in every block so a block decodes alone; 4 bytes per 256 elements);
//! fp8 `y = E4M3[c]·s`; int symmetric `y = s·(c − 2^(b−1))`; int with zeros `y = s·(c − z)`.
//! The fp8 scale is per 256-element block: a per-channel scale is the special case where all
//! blocks of a row hold the same value; per block costs the same 4 bytes and fits better.
//!
//! MXFP4 keeps the GGML block (`QuantFormat::MXFP4`, 17 bytes per 32): it has the same
//! 4.25 bits per weight an aligned super-block would have, GGUF files (gpt-oss) need its
//! kernels anyway, and a second MXFP4 layout would double that work on every backend.

/// Elements that share one scale (and zero point) in a metal-marlin format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    G32,
    G64,
    G128,
    G256,
}

impl Group {
    /// Every group size, smallest first.
    pub const ALL: [Group; 4] = [Group::G32, Group::G64, Group::G128, Group::G256];

    /// Elements per group.
    pub fn size(self) -> usize {
        match self {
            Group::G32 => 32,
            Group::G64 => 64,
            Group::G128 => 128,
            Group::G256 => 256,
        }
    }

    /// The group of `size` elements, if it is one of 32/64/128/256.
    pub fn from_size(size: usize) -> Option<Group> {
        Self::ALL.into_iter().find(|g| g.size() == size)
    }

    fn index(self) -> usize {
        match self {
            Group::G32 => 0,
            Group::G64 => 1,
            Group::G128 => 2,
            Group::G256 => 3,
        }
    }
}

/// Bit width of an integer metal-marlin format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntBits {
    B2,
    B3,
    B4,
    B8,
}

impl IntBits {
    /// Every width.
    pub const ALL: [IntBits; 4] = [IntBits::B2, IntBits::B3, IntBits::B4, IntBits::B8];

    /// Bits per code.
    pub fn bits(self) -> u32 {
        match self {
            IntBits::B2 => 2,
            IntBits::B3 => 3,
            IntBits::B4 => 4,
            IntBits::B8 => 8,
        }
    }

    /// The width for `bits`, if supported.
    pub fn from_bits(bits: u32) -> Option<IntBits> {
        Self::ALL.into_iter().find(|b| b.bits() == bits)
    }

    fn index(self) -> usize {
        match self {
            IntBits::B2 => 0,
            IntBits::B3 => 1,
            IntBits::B4 => 2,
            IntBits::B8 => 3,
        }
    }
}

/// An integer group-quantized format: `bits`, symmetric or with zero points, group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntFormat {
    pub bits: IntBits,
    pub zeros: bool,
    pub group: Group,
}

/// Names of `fp4_g*`, indexed by [`Group`].
const FP4_NAMES: [&str; 4] = ["fp4_g32", "fp4_g64", "fp4_g128", "fp4_g256"];

/// Names of the integer formats, indexed by bits, zeros, group.
const INT_NAMES: [[[&str; 4]; 2]; 4] = [
    [
        ["int2_g32", "int2_g64", "int2_g128", "int2_g256"],
        ["int2z_g32", "int2z_g64", "int2z_g128", "int2z_g256"],
    ],
    [
        ["int3_g32", "int3_g64", "int3_g128", "int3_g256"],
        ["int3z_g32", "int3z_g64", "int3z_g128", "int3z_g256"],
    ],
    [
        ["int4_g32", "int4_g64", "int4_g128", "int4_g256"],
        ["int4z_g32", "int4z_g64", "int4z_g128", "int4z_g256"],
    ],
    [
        ["int8_g32", "int8_g64", "int8_g128", "int8_g256"],
        ["int8z_g32", "int8z_g64", "int8z_g128", "int8z_g256"],
    ],
];

/// Stable name of an fp4 format with `group`.
pub(crate) fn fp4_name(group: Group) -> &'static str {
    FP4_NAMES[group.index()]
}

impl IntFormat {
    /// Stable snake_case name, e.g. `int4_g128`, `int4z_g128`.
    pub fn name(self) -> &'static str {
        INT_NAMES[self.bits.index()][usize::from(self.zeros)][self.group.index()]
    }

    /// Bytes of packed codes per 256 elements.
    pub fn code_bytes(self) -> usize {
        self.bits.bits() as usize * 32
    }

    /// Groups per 256-element block.
    pub fn groups(self) -> usize {
        256 / self.group.size()
    }

    /// Every integer format.
    pub fn all() -> Vec<IntFormat> {
        let mut v = Vec::new();
        for bits in IntBits::ALL {
            for zeros in [false, true] {
                for group in Group::ALL {
                    v.push(IntFormat { bits, zeros, group });
                }
            }
        }
        v
    }
}

/// Byte geometry of one block of `n` elements (256, or a tail that is a multiple of 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockGeom {
    /// Elements in the block.
    pub n: usize,
    /// Elements per scale group.
    pub group: usize,
    /// Scale groups (the last may be partial in a tail).
    pub groups: usize,
    /// Offset of the scales (= bytes of codes).
    pub scales_at: usize,
    /// Bytes per stored scale (f16 2, UE4M3 1, f32 4).
    pub scale_bytes: usize,
    /// Offset of the u8 zero points (int formats with zeros).
    pub zeros_at: usize,
    /// Offset of nvfp4's f32 tensor scale.
    pub global_at: usize,
    /// Total bytes, a multiple of 4.
    pub bytes: usize,
}

/// Geometry of a metal-marlin block of `n` elements (`None` for other formats).
pub fn block_geom(format: crate::QuantFormat, n: usize) -> Option<BlockGeom> {
    use crate::QuantFormat as F;
    let (bits, group, scale_bytes, zeros) = match format {
        F::Fp4(g) => (4, g.size(), 2, false),
        F::Nvfp4 => (4, 16, 1, false),
        F::Fp8 => (8, 256, 4, false),
        F::Int(i) => (i.bits.bits() as usize, i.group.size(), 2, i.zeros),
        _ => return None,
    };
    let groups = n.div_ceil(group);
    let scales_at = n * bits / 8;
    let zeros_at = scales_at + groups * scale_bytes;
    let global_at = zeros_at + if zeros { groups } else { 0 };
    let end = global_at + if format == F::Nvfp4 { 4 } else { 0 };
    Some(BlockGeom {
        n,
        group,
        groups,
        scales_at,
        scale_bytes,
        zeros_at,
        global_at,
        bytes: pad4(end),
    })
}

/// Round `n` up to a multiple of 4.
pub(crate) const fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}
