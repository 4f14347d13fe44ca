//! Viterbi search of one 256-weight tile over the 2^16-state bitshift trellis (digest §6.1):
//! the path of states minimizing Σ (w_t − f(state_t))², tail-biting by the two-pass trick.
//!
//! The predecessors of state `s` are `h·G + (s >> K)` for `h < 2^K` (`G = 2^(16−K)`), so a
//! step is an element-wise min of `2^K` contiguous slices of the previous costs (`M[g]`)
//! followed by `C[s] = (w − f(s))² + M[s >> K]`. Each stored cost carries its state's top
//! K bits in the low mantissa bits, so the min also yields the argmin (positive floats order
//! like their bit patterns; the tag changes a cost by under 2^-19 relative).

#[cfg(target_arch = "x86_64")]
use super::viterbi_simd::{update_avx2, update_avx512};
use crate::{Error, Result};

/// Weights per tile.
pub const TILE: usize = 256;
/// States of the 16-bit trellis.
pub const STATES: usize = 1 << 16;
/// Cost of a forbidden state (finite so sums stay ordered; 256 of them still fit in f32).
const BLOCKED: f32 = 1e30;

/// Per-worker buffers of the search (about `STATES·4 + 256·2^(16−K)` bytes).
#[derive(Debug, Default)]
pub struct Scratch {
    cost: Vec<f32>,
    min: Vec<f32>,
    /// Per step, per group `g`: the winning predecessor's top K bits.
    back: Vec<u8>,
    /// `M` broadcast to one value per state.
    wide: Vec<f32>,
    rotated: Vec<f32>,
    path: Vec<u16>,
}

/// How far the first (rotated) pass reaches on each side of the wrap point.
/// 128 = the whole tile, as EXL3 does; the survivors merge long before that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Search {
    pub wrap_window: usize,
}

impl Default for Search {
    fn default() -> Self {
        Self { wrap_window: 128 }
    }
}

/// The tail-biting state path (256 states) of the best stream for the tile `w` (256 values)
/// under the codebook `table` (65536 decoded values, one per state) at `bits` per weight.
pub fn tile_path(
    table: &[f32],
    bits: u32,
    w: &[f32],
    search: Search,
    scratch: &mut Scratch,
) -> Result<[u16; TILE]> {
    if table.len() != STATES || w.len() != TILE {
        return Err(Error::Invalid(format!(
            "viterbi: table of {} values and a tile of {} weights (want {STATES}, {TILE})",
            table.len(),
            w.len()
        )));
    }
    match bits {
        2 => Ok(tail_biting::<2>(table, w, search, scratch)),
        3 => Ok(tail_biting::<3>(table, w, search, scratch)),
        4 => Ok(tail_biting::<4>(table, w, search, scratch)),
        b => Err(Error::Invalid(format!("trellis bits {b} (2, 3 or 4)"))),
    }
}

/// Pass 1 over the sequence rotated so the wrap point sits in the middle (only `window`
/// positions each side), read the 16−K bits shared by the last and first states; pass 2
/// over the tile constrained to start and end on them.
fn tail_biting<const K: u32>(
    table: &[f32],
    w: &[f32],
    search: Search,
    s: &mut Scratch,
) -> [u16; TILE] {
    let win = search.wrap_window.clamp(1, TILE / 2);
    let mut rotated = std::mem::take(&mut s.rotated);
    rotated.clear();
    rotated.extend_from_slice(&w[TILE - win..]);
    rotated.extend_from_slice(&w[..win]);
    run::<K>(table, &rotated, None, s);
    let overlap = s.path[win - 1] & (0xFFFF >> K);
    s.rotated = rotated;
    run::<K>(table, w, Some(overlap), s);
    let mut out = [0u16; TILE];
    out.copy_from_slice(&s.path[..TILE]);
    out
}

/// Forward pass and backtrack over `w`; with `wrap = Some(o)` the first state's top 16−K
/// bits and the last state's low 16−K bits must equal `o`. Leaves the path in `s.path`.
/// Runs an AVX-512 or AVX2 build where the CPU has one.
fn run<const K: u32>(table: &[f32], w: &[f32], wrap: Option<u16>, s: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected on this CPU.
            return unsafe { run_avx512::<K>(table, w, wrap, s) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA were detected on this CPU.
            return unsafe { run_avx2::<K>(table, w, wrap, s) };
        }
    }
    run_body::<K, PORTABLE>(table, w, wrap, s)
}

/// Which update kernel a build of [`run_body`] uses.
const PORTABLE: u8 = 0;
const AVX2: u8 = 1;
const AVX512: u8 = 2;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512<const K: u32>(table: &[f32], w: &[f32], wrap: Option<u16>, s: &mut Scratch) {
    run_body::<K, AVX512>(table, w, wrap, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<const K: u32>(table: &[f32], w: &[f32], wrap: Option<u16>, s: &mut Scratch) {
    run_body::<K, AVX2>(table, w, wrap, s)
}

#[inline(always)]
fn run_body<const K: u32, const ISA: u8>(
    table: &[f32],
    w: &[f32],
    wrap: Option<u16>,
    s: &mut Scratch,
) {
    let groups = STATES >> K;
    let kmask = (1u32 << K) - 1;
    let steps = w.len();
    s.cost.resize(STATES, 0.0);
    s.min.resize(groups + 4, 0.0); // padding for the AVX-512 window loads
    s.back.resize(steps * groups, 0);
    s.wide.resize(STATES, 0.0);
    let wide = &mut s.wide[..STATES];
    let cost = &mut s.cost[..STATES];
    let padded = &mut s.min[..groups + 4];

    // Step 0: every state, or only the 2^K states whose top bits are the overlap.
    let w0 = w[0];
    for (i, (c, &f)) in cost.iter_mut().zip(table).enumerate() {
        let ok = wrap.is_none_or(|o| (i >> K) as u16 == o);
        let v = if ok { (w0 - f) * (w0 - f) } else { BLOCKED };
        *c = tag::<K>(v, i);
    }
    for (t, &wt) in w.iter().enumerate().skip(1) {
        // M[g] = min over the K top bits h of C[h·G + g] (the tag carries h).
        let min = &mut padded[..groups];
        min.copy_from_slice(&cost[..groups]);
        for h in 1..(1usize << K) {
            let src = &cost[h * groups..(h + 1) * groups];
            for (m, &x) in min.iter_mut().zip(src) {
                *m = if x < *m { x } else { *m };
            }
        }
        let back = &mut s.back[t * groups..(t + 1) * groups];
        for (b, m) in back.iter_mut().zip(min.iter()) {
            *b = (m.to_bits() & kmask) as u8;
        }
        match ISA {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: this build runs only where `run` detected AVX2 + FMA.
            AVX2 => unsafe { update_avx2(cost, table, min, wt, K) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: this build runs only where `run` detected AVX-512F; `padded` has 4 extra.
            AVX512 => unsafe { update_avx512(cost, table, padded, wt, K) },
            _ => update::<K>(cost, table, min, wide, wt),
        }
    }
    // Best end state (with the wrap, its low 16−K bits must be the overlap).
    let mut best = (f32::INFINITY, 0usize);
    match wrap {
        None => {
            for (i, &c) in cost.iter().enumerate() {
                if c < best.0 {
                    best = (c, i);
                }
            }
        }
        Some(o) => {
            for h in 0..(1usize << K) {
                let i = (h << (16 - K)) | usize::from(o);
                if cost[i] < best.0 {
                    best = (cost[i], i);
                }
            }
        }
    }
    s.path.resize(steps, 0);
    let mut state = best.1;
    for t in (0..steps).rev() {
        s.path[t] = state as u16;
        if t > 0 {
            let g = state >> K;
            let h = usize::from(s.back[t * groups + g]);
            state = (h << (16 - K)) | g;
        }
    }
}

/// `C[g·2^K + c] = (w − f)² + M[g]`, tagged with the state's top K bits.
#[inline(always)]
fn update<const K: u32>(cost: &mut [f32], table: &[f32], min: &[f32], wide: &mut [f32], w: f32) {
    match K {
        2 => update_w::<4>(cost, table, min, wide, w),
        3 => update_w::<8>(cost, table, min, wide, w),
        _ => update_w::<16>(cost, table, min, wide, w),
    }
}

/// [`update`] with `W = 2^K` states per group: `M` is first broadcast to one value per
/// state (`wide`), so the update itself is a flat element-wise loop.
#[inline(always)]
fn update_w<const W: usize>(
    cost: &mut [f32],
    table: &[f32],
    min: &[f32],
    wide: &mut [f32],
    w: f32,
) {
    let k = W.trailing_zeros();
    let clear = !((1u32 << k) - 1);
    for (e, &m) in wide.as_chunks_mut::<W>().0.iter_mut().zip(min) {
        *e = [m; W];
    }
    for (h, ((cb, tb), mb)) in cost
        .chunks_exact_mut(STATES >> k)
        .zip(table.chunks_exact(STATES >> k))
        .zip(wide.chunks_exact(STATES >> k))
        .enumerate()
    {
        let tagbits = h as u32;
        for ((c, &f), &m) in cb.iter_mut().zip(tb).zip(mb) {
            let d = w - f;
            *c = f32::from_bits(((d * d + m).to_bits() & clear) | tagbits);
        }
    }
}

#[inline(always)]
fn tag<const K: u32>(v: f32, state: usize) -> f32 {
    let h = (state >> (16 - K)) as u32;
    f32::from_bits((v.to_bits() & !((1u32 << K) - 1)) | h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QTIP's 1MAD code (digest §6.1), local so these tests need no codebook module.
    fn table() -> Vec<f32> {
        (0..STATES as u32)
            .map(|x| {
                let x = x.wrapping_mul(34_038_481).wrapping_add(76_625_530);
                let s = (x & 0xFF) + ((x >> 8) & 0xFF) + ((x >> 16) & 0xFF) + (x >> 24);
                (s as f32 - 510.0) / 147.800_54
            })
            .collect()
    }

    fn gauss(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut u = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| ((-2.0 * u().ln()).sqrt() * (std::f64::consts::TAU * u()).cos()) as f32)
            .collect()
    }

    #[test]
    fn paths_are_tail_biting_and_error_falls_with_bits() {
        let t = table();
        let w = gauss(TILE * 4, 7);
        let mut s = Scratch::default();
        let mut mse = Vec::new();
        for bits in 2..=4u32 {
            let mut err = 0f64;
            for tile in w.chunks_exact(TILE) {
                let p = tile_path(&t, bits, tile, Search::default(), &mut s).unwrap();
                for i in 0..TILE {
                    let prev = p[(i + TILE - 1) % TILE];
                    assert_eq!(p[i] >> bits, prev & (0xFFFF >> bits), "K={bits} t={i}");
                    err += f64::from(tile[i] - t[usize::from(p[i])]).powi(2);
                }
            }
            mse.push(err / w.len() as f64);
        }
        // QTIP's 1MAD on N(0,1): about 0.07 / 0.02 / 0.006 at K = 2/3/4 (Lloyd-Max scalar:
        // 0.118 / 0.035 / 0.0095).
        assert!(
            mse[0] < 0.085 && mse[1] < 0.026 && mse[2] < 0.0075,
            "{mse:?}"
        );
        assert!(mse[0] > 0.05 && mse[1] > 0.012 && mse[2] > 0.003, "{mse:?}");
    }

    #[test]
    fn matches_a_naive_dynamic_program() {
        let t = table();
        let mut s = Scratch::default();
        let w = [0.3f32, -1.2, 2.0, 0.1, -0.4, 0.9];
        let total = |p: &[u16]| -> f32 {
            p.iter()
                .zip(&w)
                .map(|(&x, &v)| (v - t[usize::from(x)]).powi(2))
                .sum()
        };
        for k in [2u32, 3] {
            // Straight DP over (state, predecessor) without the grouped min.
            let mut c: Vec<f32> = t.iter().map(|&f| (w[0] - f).powi(2)).collect();
            for &v in &w[1..] {
                c = (0..STATES)
                    .map(|st| {
                        let best = (0..1usize << k)
                            .map(|h| c[(h << (16 - k)) | (st >> k)])
                            .fold(f32::INFINITY, f32::min);
                        (v - t[st]).powi(2) + best
                    })
                    .collect();
            }
            let want = c.iter().copied().fold(f32::INFINITY, f32::min);
            match k {
                2 => run::<2>(&t, &w, None, &mut s),
                _ => run::<3>(&t, &w, None, &mut s),
            }
            let path = &s.path[..w.len()];
            for i in 1..w.len() {
                assert_eq!(path[i] >> k, path[i - 1] & (0xFFFF >> k));
            }
            let got = total(path);
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want),
                "K={k}: {got} vs {want}"
            );
        }
        assert!(tile_path(&t, 5, &[0.0; TILE], Search::default(), &mut s).is_err());
        assert!(tile_path(&t, 2, &[0.0; 10], Search::default(), &mut s).is_err());
    }

    #[test]
    fn every_build_finds_an_equally_good_path() {
        let t = table();
        let w = gauss(64, 9);
        let mut s = Scratch::default();
        let err = |s: &Scratch| -> f32 {
            s.path
                .iter()
                .zip(&w)
                .map(|(&x, &v)| (v - t[usize::from(x)]).powi(2))
                .sum()
        };
        run_body::<3, PORTABLE>(&t, &w, Some(0x123), &mut s);
        let want = err(&s);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: detected just above.
                unsafe { run_avx2::<3>(&t, &w, Some(0x123), &mut s) };
                assert!(
                    (err(&s) - want).abs() < 1e-4 * want,
                    "avx2 {} vs {want}",
                    err(&s)
                );
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: detected just above.
                unsafe { run_avx512::<3>(&t, &w, Some(0x123), &mut s) };
                assert!(
                    (err(&s) - want).abs() < 1e-4 * want,
                    "avx512 {} vs {want}",
                    err(&s)
                );
            }
        }
        assert_eq!(s.path[0] >> 3, 0x123);
        assert_eq!(s.path[63] & 0x1FFF, 0x123);
    }
}
