//! Trellis tile decoding and the per-strip dot loop (16 output rows × all inputs).
//!
//! The tile's words are turned into stream-order bytes once; then eight positions share one
//! big-endian u64 window (`state = window >> const & 0xFFFF`), and codebook values take a
//! few integer ops plus two f16→f32 conversions by bit arithmetic. Everything is bit-exact
//! with `marlin_core::formats::trellis::decode_value`. AVX2: [`super::trellis_avx2`].

use marlin_core::formats::trellis_code::{
    HALVES_MASK, HALVES_XOR, INST3_ADD, INST3_MUL, MCG_MUL, MUL1_MUL, MUL1_SCALE, TILE,
};
use marlin_core::Codebook;

use super::Isa;

/// A tile's stream as bytes in stream order, with the wrap: `[last 2 bytes, all 32·K bytes,
/// first 8 bytes]`. Byte `j·K` starts the u64 window of positions `8j..8j+8`.
pub(super) const BE: usize = 2 + 128 + 8;
/// Tokens sharing one decoded tile in the GEMM path.
pub(super) const TOKEN_CHUNK: usize = 16;
/// Codebook ids of the const-generic kernels.
pub(super) const INST3: u8 = 0;
pub(super) const MCG: u8 = 1;
pub(super) const MUL1: u8 = 2;

/// One call's inputs, validated by the caller.
pub(super) struct Job<'a> {
    /// The tiles' bytes (tile `(tn, tk)` at `(tn·tiles_k + tk)·tile_bytes`).
    pub bytes: &'a [u8],
    pub tiles_k: usize,
    pub tile_bytes: usize,
    /// Inputs per token.
    pub k: usize,
    /// Prepared activations `H_k(suh ⊙ x)`, `n_tokens × k`, permuted within every 8 by
    /// [`x_order`].
    pub xs: &'a [f32],
    pub n_tokens: usize,
}

/// Per-task scratch of the scalar path (accumulators for a token chunk, sized on first use).
#[derive(Default)]
pub(super) struct Scratch {
    acc: Vec<f32>,
}

/// f32 bits of the normal f16 `h` (low 16 bits; exponent known to be non-zero, non-max).
#[inline(always)]
fn f16_bits(h: u32) -> f32 {
    f32::from_bits(((h & 0x8000) << 16) | (((h & 0x7FFF) << 13) + 0x3800_0000))
}

#[inline(always)]
fn halves(p: u32) -> f32 {
    let h = (p & HALVES_MASK) ^ HALVES_XOR;
    f16_bits(h >> 16) + f16_bits(h & 0xFFFF)
}

/// 3INST value of a state.
#[inline(always)]
pub(crate) fn inst3(s: u32) -> f32 {
    halves(s.wrapping_mul(INST3_MUL).wrapping_add(INST3_ADD))
}

/// MCG value of a state.
#[inline(always)]
pub(crate) fn mcg(s: u32) -> f32 {
    halves(s.wrapping_mul(MCG_MUL))
}

/// MUL1 value of a state.
#[inline(always)]
pub(crate) fn mul1(s: u32) -> f32 {
    let p = s.wrapping_mul(MUL1_MUL);
    let v = (p & 0x00FF_00FF) + ((p >> 8) & 0x00FF_00FF);
    let sum = (v & 0xFFFF) + (v >> 16);
    (sum as i32 as f32 - 510.0) * MUL1_SCALE
}

/// The value of state `s` in codebook `CB`.
#[inline(always)]
fn value<const CB: u8>(s: u32) -> f32 {
    match CB {
        INST3 => inst3(s),
        MCG => mcg(s),
        _ => mul1(s),
    }
}

/// Fill [`BE`] from a tile's little-endian words (each word's bytes reversed).
#[inline(always)]
pub(super) fn fill_be<const K: usize>(tile: &[u8], be: &mut [u8; BE]) {
    let nb = 32 * K;
    for (d, w) in be[2..2 + nb]
        .as_chunks_mut::<4>()
        .0
        .iter_mut()
        .zip(tile.as_chunks::<4>().0)
    {
        *d = [w[3], w[2], w[1], w[0]];
    }
    be[0] = be[nb];
    be[1] = be[nb + 1];
    for i in 0..8 {
        be[2 + nb + i] = be[2 + i];
    }
}

/// The window of positions `8j..8j+8`: stream bits from `8jK − 16`, first bit highest;
/// position `8j + i` has state `(w >> (48 − (i+1)·K)) & 0xFFFF`.
#[inline(always)]
pub(super) fn window<const K: usize>(be: &[u8; BE], j: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&be[j * K..j * K + 8]);
    u64::from_be_bytes(b)
}

/// Decode a tile's bytes to its 256 values.
#[inline(always)]
pub(crate) fn decode_tile<const K: usize, const CB: u8>(tile: &[u8], q: &mut [f32; TILE]) {
    let mut be = [0u8; BE];
    fill_be::<K>(tile, &mut be);
    for (j, q8) in q.as_chunks_mut::<8>().0.iter_mut().enumerate() {
        let w = window::<K>(&be, j);
        for (i, v) in q8.iter_mut().enumerate() {
            *v = value::<CB>(((w >> (48 - (i + 1) * K)) & 0xFFFF) as u32);
        }
    }
}

/// Rows `16·tn..16·tn+16` of `Q · xs` for every token into `out` (`n_tokens × 16`).
fn strip_scalar<const K: usize, const CB: u8>(
    job: &Job,
    tn: usize,
    out: &mut [f32],
    scr: &mut Scratch,
) {
    let mut q = [0f32; TILE];
    scr.acc.resize(TOKEN_CHUNK * TILE, 0.0);
    let mut t0 = 0;
    while t0 < job.n_tokens {
        let nt = (job.n_tokens - t0).min(TOKEN_CHUNK);
        let acc = &mut scr.acc[..nt * TILE];
        acc.fill(0.0);
        for tk in 0..job.tiles_k {
            let at = (tn * job.tiles_k + tk) * job.tile_bytes;
            decode_tile::<K, CB>(&job.bytes[at..at + job.tile_bytes], &mut q);
            let qr = q.as_chunks::<16>().0;
            for (t, a) in acc.as_chunks_mut::<TILE>().0.iter_mut().enumerate() {
                let xa = (t0 + t) * job.k + tk * 16;
                let Some(x) = job.xs[xa..xa + 16].as_chunks::<16>().0.first() else {
                    continue;
                };
                for (ar, qr) in a.as_chunks_mut::<16>().0.iter_mut().zip(qr) {
                    for c in 0..16 {
                        ar[c] += qr[c] * x[c];
                    }
                }
            }
        }
        for (t, a) in acc.as_chunks::<TILE>().0.iter().enumerate() {
            let o = &mut out[(t0 + t) * 16..(t0 + t + 1) * 16];
            for (y, row) in o.iter_mut().zip(a.as_chunks::<16>().0) {
                *y = row.iter().sum();
            }
        }
        t0 += nt;
    }
}

fn strip_k<const K: usize, const CB: u8>(
    isa: Isa,
    job: &Job,
    tn: usize,
    out: &mut [f32],
    scr: &mut Scratch,
) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: non-scalar families are only selectable where AVX2, FMA and F16C exist;
        // the caller permuted the activations for this path (`x_order`).
        unsafe { super::trellis_avx2::strip::<K, CB>(job, tn, out) };
        return;
    }
    let _ = isa;
    strip_scalar::<K, CB>(job, tn, out, scr)
}

fn strip_cb<const K: usize>(
    isa: Isa,
    cb: Codebook,
    job: &Job,
    tn: usize,
    out: &mut [f32],
    scr: &mut Scratch,
) {
    match cb {
        Codebook::Inst3 => strip_k::<K, INST3>(isa, job, tn, out, scr),
        Codebook::Mcg => strip_k::<K, MCG>(isa, job, tn, out, scr),
        Codebook::Mul1 => strip_k::<K, MUL1>(isa, job, tn, out, scr),
    }
}

/// The order activations must be in, within every 8, for `isa` and `cb` (`None`: as is).
pub(super) fn x_order(isa: Isa, cb: Codebook) -> Option<[usize; 8]> {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        let id = match cb {
            Codebook::Mul1 => MUL1,
            _ => INST3,
        };
        return Some(super::trellis_avx2::lane_order(id));
    }
    let _ = (isa, cb);
    None
}

/// Compute strip `tn` (16 output rows, every token) with `bits` ∈ {2, 3, 4} (checked by the
/// caller; other widths leave `out` untouched).
pub(super) fn strip(
    isa: Isa,
    bits: u8,
    cb: Codebook,
    job: &Job,
    tn: usize,
    out: &mut [f32],
    scr: &mut Scratch,
) {
    match bits {
        2 => strip_cb::<2>(isa, cb, job, tn, out, scr),
        3 => strip_cb::<3>(isa, cb, job, tn, out, scr),
        4 => strip_cb::<4>(isa, cb, job, tn, out, scr),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marlin_core::formats::trellis::{decode_value, tile_state};

    #[test]
    fn values_are_bit_exact_for_every_state() {
        for s in 0..=u16::MAX {
            let x = u32::from(s);
            let cases = [
                (inst3(x), Codebook::Inst3),
                (mcg(x), Codebook::Mcg),
                (mul1(x), Codebook::Mul1),
            ];
            for (v, cb) in cases {
                assert_eq!(v.to_bits(), decode_value(cb, s).to_bits(), "{cb} {s:#x}");
            }
        }
    }

    fn check_tile<const K: usize>(seed: u32) {
        let tile: Vec<u8> = (0..32 * K as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect();
        let words: Vec<u32> = tile
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut q = [0f32; TILE];
        decode_tile::<K, MCG>(&tile, &mut q);
        for (t, v) in q.iter().enumerate() {
            let s = tile_state(&words, K as u32, t).unwrap();
            assert_eq!(*v, decode_value(Codebook::Mcg, s), "K {K} t {t}");
        }
    }

    #[test]
    fn tiles_decode_like_the_reference() {
        for seed in [1, 77, 12345] {
            check_tile::<2>(seed);
            check_tile::<3>(seed);
            check_tile::<4>(seed);
        }
    }
}
