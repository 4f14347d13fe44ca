//! Trellis bitstreams and codebooks: the decoded value of a 16-bit state, the state of a
//! tile position, and packing per-position K-bit chunks into a tile's words.
//!
//! A tile is 256 weights, one tail-biting trellis sequence of `256·K` bits held in `8·K`
//! u32 words. Stream bit `b` is `(word[b/32] >> (31 − b%32)) & 1` (MSB-first in each word).
//! The state of position `t` is the 16 stream bits `[(t+1)·K − 16, (t+1)·K)` taken modulo
//! `256·K`, first bit most significant; equivalently
//! `state_t = ((state_{t−1} << K) | chunk_t) & 0xFFFF` with `chunk_t` = bits `[t·K, t·K+K)`.

use super::fp::f16_to_f32;
use crate::{Error, Result};

/// Weights per tile (16 output rows × 16 inputs).
pub const TILE: usize = 256;

/// Multiplier of the 3INST codebook (`x·A + B`).
pub const INST3_MUL: u32 = 89_226_354;
/// Addend of the 3INST codebook.
pub const INST3_ADD: u32 = 64_248_484;
/// Multiplier of the MCG codebook (no addend).
pub const MCG_MUL: u32 = 0xCBAC_1FED;
/// Multiplier of the MUL1 codebook.
pub const MUL1_MUL: u32 = 0x83DC_D12D;
/// Mask applied to the product before the XOR (keeps sign, 2 exponent bits, mantissa).
pub const HALVES_MASK: u32 = 0x8FFF_8FFF;
/// XOR forcing each half's exponent into [2^-3, 2^1).
pub const HALVES_XOR: u32 = 0x3B60_3B60;
/// MUL1's scale as an f32: the f32 division `1.0f32 / 147.800537109375f32`
/// (147.800537109375 = 605391/4096 is exact in f32, so this equals `4096 / 605391`
/// correctly rounded). Bits: [`MUL1_SCALE_BITS`].
pub const MUL1_SCALE: f32 = 4096.0 / 605_391.0;
/// Bit pattern of [`MUL1_SCALE`]; GPU kernels use `bitcast<f32>(MUL1_SCALE_BITS)`.
pub const MUL1_SCALE_BITS: u32 = 0x3BDD_B447;

/// A computed trellis codebook: maps a 16-bit state to a roughly Gaussian value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codebook {
    /// QTIP 3INST: `x·89226354 + 64248484`, mask, xor, sum of the two f16 halves.
    Inst3,
    /// EXL3 MCG: `x·0xCBAC1FED`, then as 3INST.
    Mcg,
    /// EXL3 MUL1: `x·0x83DCD12D`, the sum `s` of its 4 bytes, `(s − 510)·MUL1_SCALE`.
    Mul1,
}

impl Codebook {
    /// Every codebook.
    pub const ALL: [Codebook; 3] = [Codebook::Inst3, Codebook::Mcg, Codebook::Mul1];
    /// The codebook used when a name does not pick one (`trellis2/3/4`).
    pub const DEFAULT: Codebook = Codebook::Inst3;

    /// Stable name: `3inst`, `mcg`, `mul1`.
    pub fn name(self) -> &'static str {
        match self {
            Codebook::Inst3 => "3inst",
            Codebook::Mcg => "mcg",
            Codebook::Mul1 => "mul1",
        }
    }

    /// Parse a name as printed by [`Codebook::name`] (case-insensitive; `inst3` also accepted).
    pub fn from_name(s: &str) -> Option<Codebook> {
        let s = s.to_ascii_lowercase();
        if s == "inst3" {
            return Some(Codebook::Inst3);
        }
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Codebook::Inst3 => 0,
            Codebook::Mcg => 1,
            Codebook::Mul1 => 2,
        }
    }
}

impl std::fmt::Display for Codebook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The decoded value of `state` (bit-exact reference; every backend computes exactly this).
///
/// 3INST/MCG: `x = (x·A (+B)) & 0x8FFF8FFF ^ 0x3B603B60`, value = `f32(f16(x>>16)) +
/// f32(f16(x&0xFFFF))` — each half is a normal f16 in ±[0.125, 2), so the f32 sum is exact.
/// MUL1: `s` = sum of the 4 bytes of `x·0x83DCD12D`, value = `(s as f32 − 510.0) · MUL1_SCALE`.
#[inline]
pub fn decode_value(codebook: Codebook, state: u16) -> f32 {
    let x = u32::from(state);
    let halves = |p: u32| {
        let h = (p & HALVES_MASK) ^ HALVES_XOR;
        f16_to_f32((h >> 16) as u16) + f16_to_f32((h & 0xFFFF) as u16)
    };
    match codebook {
        Codebook::Inst3 => halves(x.wrapping_mul(INST3_MUL).wrapping_add(INST3_ADD)),
        Codebook::Mcg => halves(x.wrapping_mul(MCG_MUL)),
        Codebook::Mul1 => {
            let p = x.wrapping_mul(MUL1_MUL);
            let s = (p & 0xFF) + ((p >> 8) & 0xFF) + ((p >> 16) & 0xFF) + (p >> 24);
            (s as f32 - 510.0) * MUL1_SCALE
        }
    }
}

/// Check `bits` is a supported trellis width (2, 3 or 4) and return it as u32.
pub fn check_bits(bits: u32) -> Result<u32> {
    if (2..=4).contains(&bits) {
        Ok(bits)
    } else {
        Err(Error::Shape(format!(
            "trellis bits must be 2, 3 or 4, got {bits}"
        )))
    }
}

/// u32 words in one tile of `bits` bits per weight (`8·bits`).
pub const fn tile_words(bits: u32) -> usize {
    8 * bits as usize
}

/// `len` (≤ 32) stream bits starting at bit `start` (taken modulo the stream length
/// `32·words.len()`), first bit most significant.
#[inline]
pub fn stream_bits(words: &[u32], start: usize, len: u32) -> u32 {
    let nw = words.len();
    let total = 32 * nw;
    if nw == 0 || len == 0 {
        return 0;
    }
    let start = start % total;
    let w = start / 32;
    let pair = (u64::from(words[w]) << 32) | u64::from(words[(w + 1) % nw]);
    ((pair << (start % 32)) >> (64 - len)) as u32
}

/// The 16-bit state of position `t` (0..256) of a tile stream of `bits` bits per weight.
/// `words` must hold the tile's `8·bits` words.
pub fn tile_state(words: &[u32], bits: u32, t: usize) -> Result<u16> {
    let bits = check_bits(bits)?;
    if words.len() != tile_words(bits) || t >= TILE {
        return Err(Error::Shape(format!(
            "tile_state: {} words for {bits} bits, position {t}",
            words.len()
        )));
    }
    let total = TILE * bits as usize;
    let end = (t + 1) * bits as usize;
    Ok(stream_bits(words, end + total - 16, 16) as u16)
}

/// Pack 256 per-position chunks (`chunk_t` = stream bits `[t·K, t·K+K)`, low `bits` bits
/// used) into a tile's `8·bits` words.
pub fn pack_tile(chunks: &[u16], bits: u32, out: &mut [u32]) -> Result<()> {
    let bits = check_bits(bits)?;
    if chunks.len() != TILE || out.len() != tile_words(bits) {
        return Err(Error::Shape(format!(
            "pack_tile: {} chunks into {} words for {bits} bits (want 256, {})",
            chunks.len(),
            out.len(),
            tile_words(bits)
        )));
    }
    out.fill(0);
    let mask = (1u32 << bits) - 1;
    for (t, &c) in chunks.iter().enumerate() {
        let c = u32::from(c);
        if c > mask {
            return Err(Error::Shape(format!(
                "pack_tile: chunk {t} = {c} does not fit in {bits} bits"
            )));
        }
        for i in 0..bits {
            let b = t * bits as usize + i as usize;
            let bit = (c >> (bits - 1 - i)) & 1;
            out[b / 32] |= bit << (31 - b % 32);
        }
    }
    Ok(())
}

/// Pack a tail-biting path of 256 states: checks each `state_t` follows `state_{t−1}`
/// (`state_t >> K == state_{t−1} & (0xFFFF >> K)`, position 0 following position 255)
/// and packs the low `bits` bits of each state as its chunk.
pub fn pack_states(states: &[u16], bits: u32, out: &mut [u32]) -> Result<()> {
    let bits = check_bits(bits)?;
    if states.len() != TILE {
        return Err(Error::Shape(format!(
            "pack_states: {} states, want 256",
            states.len()
        )));
    }
    let keep = 0xFFFFu16 >> bits;
    for t in 0..TILE {
        let prev = states[(t + TILE - 1) % TILE];
        if states[t] >> bits != prev & keep {
            return Err(Error::Shape(format!(
                "pack_states: state {t} ({:#06x}) does not follow {:#06x} for {bits} bits",
                states[t], prev
            )));
        }
    }
    let mask = (1u16 << bits) - 1;
    let chunks: Vec<u16> = states.iter().map(|s| s & mask).collect();
    pack_tile(&chunks, bits, out)
}
