//! Random but valid packed weights of any [`QuantFormat`], written directly as block bytes
//! (no quantizer run): random code bytes, then each block's scale fields set to a constant
//! calibrated so the dequantized values have a mean near 0 and an RMS near [`TARGET_RMS`].

use std::sync::Arc;

use marlin_core::formats::{self, f32_to_bf16, f32_to_f16};
use marlin_core::{QTensor, QuantFormat, TensorData};
use rayon::prelude::*;

use crate::Result;

/// RMS of the synthetic weights (a typical init scale).
pub const TARGET_RMS: f32 = 0.02;

/// Bytes each parallel task fills (rounded down to whole blocks).
const CHUNK_BYTES: usize = 1 << 18;

/// Blocks the calibration dequantizes.
const CAL_BLOCKS: usize = 64;

/// A fast 64-bit generator (wyrand); weights need speed, not statistical perfection.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(mix(seed))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Fill `out` with random bytes, a word at a time.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut words = out.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// splitmix64's finalizer: spreads seeds that differ in few bits.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How a block's scale is stored.
#[derive(Clone, Copy)]
enum ScaleKind {
    F16,
    F32,
    /// An E8M0 exponent byte read as 2^(e−128).
    E8m0,
}

/// Where the scale fields of a block live; `m_at` is a second f16 field (min or offset).
#[derive(Clone, Copy)]
struct Fields {
    d_at: usize,
    kind: ScaleKind,
    m_at: Option<usize>,
}

fn fields(format: QuantFormat) -> Option<Fields> {
    use QuantFormat as F;
    let f16 = |d_at, m_at| Fields {
        d_at,
        kind: ScaleKind::F16,
        m_at,
    };
    Some(match format {
        F::F32 | F::F16 | F::BF16 => return None,
        // Quantized from random values instead (see `random_tensor`).
        F::Fp4(_) | F::Int(_) | F::Nvfp4 | F::Fp8 | F::Trellis(_) => return None,
        F::Q4_0 | F::Q5_0 | F::Q8_0 | F::Q8_1 | F::IQ4_NL | F::IQ4_XS => f16(0, None),
        F::Q4_1 | F::Q5_1 | F::Q4_K | F::Q5_K => f16(0, Some(2)),
        F::Q2_K => f16(80, Some(82)),
        F::Q3_K => f16(108, None),
        F::Q6_K => f16(208, None),
        F::Q8_K => Fields {
            d_at: 0,
            kind: ScaleKind::F32,
            m_at: None,
        },
        F::MXFP4 => Fields {
            d_at: 0,
            kind: ScaleKind::E8m0,
            m_at: None,
        },
    })
}

/// Set one block's scale fields to `d` and `m`, and recompute derived fields.
fn patch(format: QuantFormat, f: Fields, block: &mut [u8], d: f32, m: f32) {
    match f.kind {
        ScaleKind::F16 => block[f.d_at..f.d_at + 2].copy_from_slice(&f32_to_f16(d).to_le_bytes()),
        ScaleKind::F32 => block[f.d_at..f.d_at + 4].copy_from_slice(&d.to_le_bytes()),
        ScaleKind::E8m0 => {
            let e = (128.0 + d.max(f32::MIN_POSITIVE).log2().round()).clamp(1.0, 254.0);
            block[f.d_at] = e as u8;
        }
    }
    if let Some(at) = f.m_at {
        block[at..at + 2].copy_from_slice(&f32_to_f16(m).to_le_bytes());
    }
    match format {
        // Q8_1 keeps s = d·Σq next to d.
        QuantFormat::Q8_1 => {
            let sum: i32 = block[4..36].iter().map(|&q| i32::from(q as i8)).sum();
            let s = f32_to_f16(d * sum as f32).to_le_bytes();
            block[2..4].copy_from_slice(&s);
        }
        // Q8_K keeps the sixteen group sums of its codes after them.
        QuantFormat::Q8_K => {
            for g in 0..16 {
                let sum: i32 = block[4 + 16 * g..20 + 16 * g]
                    .iter()
                    .map(|&q| i32::from(q as i8))
                    .sum();
                let at = 260 + 2 * g;
                block[at..at + 2].copy_from_slice(&(sum as i16).to_le_bytes());
            }
        }
        _ => {}
    }
}

/// Mean and RMS of [`CAL_BLOCKS`] random blocks with scales `(d, m)`.
fn stats(format: QuantFormat, f: Fields, d: f32, m: f32) -> Result<(f64, f64)> {
    let bb = format.block_bytes();
    let mut bytes = vec![0u8; bb * CAL_BLOCKS];
    Rng::new(0x5eed).fill(&mut bytes);
    for b in bytes.chunks_exact_mut(bb) {
        patch(format, f, b, d, m);
    }
    let mut vals = vec![0f32; format.block_elems() * CAL_BLOCKS];
    formats::dequantize(format, &bytes, &mut vals)?;
    let n = vals.len() as f64;
    let mean = vals.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let ms = vals
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        / n;
    Ok((mean, ms.sqrt()))
}

/// The `(d, m)` that give random codes a mean near 0 and an RMS near [`TARGET_RMS`].
fn calibrate(format: QuantFormat, f: Fields) -> Result<(f32, f32)> {
    let ratio = match f.m_at {
        Some(_) => {
            let (mean_d, _) = stats(format, f, 1.0, 0.0)?;
            let (mean_m, _) = stats(format, f, 0.0, 1.0)?;
            if mean_m.abs() > 1e-9 {
                -mean_d / mean_m
            } else {
                0.0
            }
        }
        None => 0.0,
    };
    let (_, rms) = stats(format, f, 1.0, ratio as f32)?;
    let c = if rms > 0.0 {
        f64::from(TARGET_RMS) / rms
    } else {
        1.0
    };
    Ok((c as f32, (c * ratio) as f32))
}

/// Approximately normal values of RMS [`TARGET_RMS`], 1024 of them, for float formats.
fn float_table() -> Vec<f32> {
    let mut rng = Rng::new(0xf10a7);
    let unit = |r: u64| (r >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
    (0..1024)
        .map(|_| {
            // Irwin–Hall: the sum of four uniforms on [−½, ½] has variance 1/3.
            let s: f32 = (0..4).map(|_| unit(rng.next_u64())).sum();
            s * TARGET_RMS * 3f32.sqrt()
        })
        .collect()
}

/// Fill a chunk of f32/f16/bf16 elements with values drawn from `table`.
fn fill_float(format: QuantFormat, chunk: &mut [u8], table: &[f32], rng: &mut Rng) {
    let width = format.block_bytes();
    let mut word = 0u64;
    for (i, el) in chunk.chunks_exact_mut(width).enumerate() {
        if i % 6 == 0 {
            word = rng.next_u64();
        }
        let v = table[(word & 1023) as usize];
        word >>= 10;
        match format {
            QuantFormat::F32 => el.copy_from_slice(&v.to_le_bytes()),
            QuantFormat::BF16 => el.copy_from_slice(&f32_to_bf16(v).to_le_bytes()),
            _ => el.copy_from_slice(&f32_to_f16(v).to_le_bytes()),
        }
    }
}

/// A `[rows, cols]` tensor of random valid weights in `format`, deterministic in `seed`.
pub fn random_tensor(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> Result<QTensor> {
    if let QuantFormat::Trellis(t) = format {
        return super::trellis::random_trellis(t, rows, cols, seed);
    }
    let shape = vec![rows, cols];
    let n = QTensor::nbytes_for(format, &shape)?;
    let bb = format.block_bytes();
    let chunk = (CHUNK_BYTES / bb).max(1) * bb;
    if format.is_marlin() {
        return marlin_random(format, shape, seed);
    }
    let mut buf = vec![0u8; n];
    match fields(format) {
        None => {
            let table = float_table();
            buf.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| {
                fill_float(format, c, &table, &mut Rng::new(seed ^ mix(i as u64)));
            });
        }
        Some(f) => {
            let (d, m) = calibrate(format, f)?;
            buf.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| {
                Rng::new(seed ^ mix(i as u64)).fill(c);
                for b in c.chunks_exact_mut(bb) {
                    patch(format, f, b, d, m);
                }
            });
        }
    }
    Ok(QTensor::new(
        format,
        shape,
        TensorData::Owned(Arc::new(buf)),
    )?)
}

/// Elements from which metal-marlin tensors get random codes instead of RTN (which takes
/// minutes for a Llama-3-8B on 16 cores, and longer for GLM-4.7-Flash's 8,800 expert
/// matrices of 3.1M elements each).
const MARLIN_RTN_MAX: usize = 1 << 20;

/// A metal-marlin tensor: uniform random values of RMS [`TARGET_RMS`], RTN-quantized; large
/// ones from random codes directly ([`marlin_random_codes`]).
fn marlin_random(format: QuantFormat, shape: Vec<usize>, seed: u64) -> Result<QTensor> {
    let numel: usize = shape.iter().product();
    if numel > MARLIN_RTN_MAX {
        return marlin_random_codes(format, shape, seed);
    }
    let half = TARGET_RMS * 3f32.sqrt();
    let mut rng = Rng::new(seed);
    let values: Vec<f32> = (0..numel)
        .map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * half)
        .collect();
    Ok(formats::quantize_tensor(format, &shape, &values)?)
}

/// Codes a random metal-marlin weight draws from, symmetric about zero (fp8: every E4M3
/// code but NaN; integers: 1 .. 2^b − 1 around the zero point 2^(b−1)).
fn marlin_codes(format: QuantFormat) -> Vec<u8> {
    match format {
        QuantFormat::Fp8 => (0..=255u8).filter(|c| c & 0x7f != 0x7f).collect(),
        QuantFormat::Int(i) => (1..1u32 << i.bits.bits()).map(|c| c as u8).collect(),
        _ => (0..16).collect(),
    }
}

/// Rows of uniformly random codes with one scale for the whole tensor, chosen so the values
/// have RMS [`TARGET_RMS`], and centred zero points; rows are packed in parallel.
fn marlin_random_codes(format: QuantFormat, shape: Vec<usize>, seed: u64) -> Result<QTensor> {
    use marlin_core::formats::marlin::{decode, pack_row, row_groups, GroupParams};
    let cols = *shape.last().unwrap_or(&0);
    let rows = shape.iter().rev().skip(1).product::<usize>();
    let row_bytes = format.row_bytes(cols)?;
    let codes = marlin_codes(format);
    let zero = match format {
        QuantFormat::Int(i) => (1u32 << (i.bits.bits() - 1)) as u8,
        _ => 0,
    };
    let unit = GroupParams { scale: 1.0, zero };
    let ms = codes
        .iter()
        .map(|&c| decode(format, c, unit, 1.0).powi(2))
        .sum::<f32>()
        / codes.len() as f32;
    let params = vec![
        GroupParams {
            scale: TARGET_RMS / ms.sqrt().max(f32::MIN_POSITIVE),
            zero,
        };
        row_groups(format, cols)
    ];
    let mut buf = vec![0u8; rows * row_bytes];
    buf.par_chunks_mut(row_bytes)
        .enumerate()
        .try_for_each(|(r, out)| {
            let mut rng = Rng::new(seed ^ mix(r as u64));
            let row: Vec<u8> = (0..cols)
                .map(|_| codes[(rng.next_u64() % codes.len() as u64) as usize])
                .collect();
            pack_row(format, &row, &params, 1.0, out)
        })?;
    Ok(QTensor::new(
        format,
        shape,
        TensorData::Owned(Arc::new(buf)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_have_the_target_rms() {
        for format in QuantFormat::marlin_all() {
            let t = marlin_random_codes(format, vec![8, 576], 3).unwrap();
            let v = t.to_f32().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{format}");
            let n = v.len() as f32;
            let mean = v.iter().sum::<f32>() / n;
            let rms = (v.iter().map(|x| x * x).sum::<f32>() / n).sqrt();
            // fp8's uniform codes are heavy-tailed (up to 448 x scale): a looser band.
            let band = if format == QuantFormat::Fp8 { 0.5 } else { 0.2 };
            assert!((rms / TARGET_RMS - 1.0).abs() < band, "{format}: rms {rms}");
            assert!(mean.abs() < 0.2 * TARGET_RMS, "{format}: mean {mean}");
        }
    }

    #[test]
    fn every_format_has_small_centred_finite_values() {
        for format in QuantFormat::ALL
            .into_iter()
            .chain(QuantFormat::marlin_all())
        {
            let cols = format.block_elems().max(32) * 4;
            let t = random_tensor(format, 16, cols, 7).unwrap();
            let v = t.to_f32().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{format}");
            let n = v.len() as f32;
            let mean = v.iter().sum::<f32>() / n;
            let rms = (v.iter().map(|x| x * x).sum::<f32>() / n).sqrt();
            // MXFP4 scales are powers of two, so its RMS is only right within a factor √2.
            assert!((0.012..0.032).contains(&rms), "{format}: rms {rms}");
            assert!(mean.abs() < 0.006, "{format}: mean {mean}");
        }
    }

    #[test]
    fn deterministic_in_the_seed() {
        let a = random_tensor(QuantFormat::Q4_K, 4, 512, 1).unwrap();
        let b = random_tensor(QuantFormat::Q4_K, 4, 512, 1).unwrap();
        let c = random_tensor(QuantFormat::Q4_K, 4, 512, 2).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
    }
}
