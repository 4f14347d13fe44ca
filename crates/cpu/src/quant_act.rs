//! Activation quantization for the integer matmul paths: f32 rows → int8 blocks, either
//! 32-element blocks with a scale and a scaled sum (Q8_0/Q8_1-like) or 256-element blocks
//! with a scale and 16-element group sums (Q8_K-like). Symmetric: `d = amax / 127`.

use rayon::prelude::*;

use crate::matmul::{kernel::ActKind, Isa};

/// Reusable storage for quantized activations (one per calling thread).
#[derive(Default)]
pub(crate) struct ActBuf {
    pub qs: Vec<i8>,
    /// 32-element blocks: `[d, d·Σq]` per block.
    pub ds: Vec<[f32; 2]>,
    /// 32-element blocks regrouped for 4-token tiles (see `kernel::Acts::grp`).
    pub grp: Vec<f32>,
    /// 256-element blocks: `d` per block, and Σq per 16-element group.
    pub d: Vec<f32>,
    pub bsums: Vec<i16>,
}

/// Tokens per parallel quantization task, and the token count from which it pays.
const PAR_TOKENS: usize = 16;

impl ActBuf {
    /// Quantize `n_tokens` rows of `cols` values for `kind` (no-op for f32 activations).
    /// Only grows the buffers, so steady-state calls do not allocate.
    pub fn fill(&mut self, kind: ActKind, x: &[f32], cols: usize, n_tokens: usize, isa: Isa) {
        let n = cols * n_tokens;
        match kind {
            ActKind::F32 => {}
            ActKind::Q8B32 => {
                let nb = cols / 32;
                grow(&mut self.qs, n);
                grow(&mut self.ds, nb * n_tokens);
                let (qs, ds) = (&mut self.qs[..n], &mut self.ds[..nb * n_tokens]);
                if n_tokens >= PAR_TOKENS {
                    x.par_chunks(cols)
                        .zip(qs.par_chunks_mut(cols))
                        .zip(ds.par_chunks_mut(nb))
                        .with_min_len(PAR_TOKENS / 2)
                        .for_each(|((x, q), ds)| quantize_b32(x, q, ds, isa));
                } else {
                    quantize_b32(x, qs, ds, isa);
                }
                let groups = n_tokens / 4;
                grow(&mut self.grp, groups * nb * 8);
                for (i, g) in self.grp[..groups * nb * 8].chunks_exact_mut(8).enumerate() {
                    let (grp, b) = (i / nb, i % nb);
                    for j in 0..4 {
                        let [d, s] = ds[(4 * grp + j) * nb + b];
                        g[j] = d;
                        g[4 + j] = s;
                    }
                }
            }
            ActKind::Q8B256 => {
                let nb = cols / 256;
                grow(&mut self.qs, n);
                grow(&mut self.d, nb * n_tokens);
                grow(&mut self.bsums, nb * n_tokens * 16);
                let (qs, d) = (&mut self.qs[..n], &mut self.d[..nb * n_tokens]);
                let bs = &mut self.bsums[..nb * n_tokens * 16];
                if n_tokens >= PAR_TOKENS {
                    x.par_chunks(cols)
                        .zip(qs.par_chunks_mut(cols))
                        .zip(d.par_chunks_mut(nb))
                        .zip(bs.par_chunks_mut(nb * 16))
                        .with_min_len(PAR_TOKENS / 2)
                        .for_each(|(((x, q), d), b)| quantize_b256(x, q, d, b, isa));
                } else {
                    quantize_b256(x, qs, d, bs, isa);
                }
            }
        }
    }
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

/// Quantize `x` (whole 32-blocks) into `qs` and per-block `[d, d·Σq]`.
pub(crate) fn quantize_b32(x: &[f32], qs: &mut [i8], ds: &mut [[f32; 2]], isa: Isa) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: SIMD families are only selectable when the CPU has AVX2/FMA/F16C.
        unsafe { crate::matmul::avx2::quant::quantize_b32(x, qs, ds) };
        return;
    }
    let _ = isa;
    for ((x, q), ds) in x
        .chunks_exact(32)
        .zip(qs.chunks_exact_mut(32))
        .zip(ds.iter_mut())
    {
        let (scale, sum) = quantize_block(x, q);
        *ds = [scale, scale * sum as f32];
    }
}

/// Quantize `x` (whole 256-blocks) into `qs`, per-block scales `d` and 16-group sums.
pub(crate) fn quantize_b256(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16], isa: Isa) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: SIMD families are only selectable when the CPU has AVX2/FMA/F16C.
        unsafe { crate::matmul::avx2::quant::quantize_b256(x, qs, d, bsums) };
        return;
    }
    let _ = isa;
    for (((x, q), d), bs) in x
        .chunks_exact(256)
        .zip(qs.chunks_exact_mut(256))
        .zip(d.iter_mut())
        .zip(bsums.chunks_exact_mut(16))
    {
        let (scale, _) = quantize_block(x, q);
        *d = scale;
        for (g, b) in q.chunks_exact(16).zip(bs.iter_mut()) {
            *b = g.iter().map(|&v| v as i16).sum();
        }
    }
}

/// Symmetric int8 quantization of one block; returns (scale, Σq).
fn quantize_block(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in q.iter_mut().zip(x) {
        // Ties to even, as the SIMD path rounds; `as` saturates, so NaN/huge inputs cannot wrap.
        *q = (v * id).round_ties_even() as i8;
        sum += *q as i32;
    }
    (d, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b32_and_b256_round_trip_and_sums() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        for isa in Isa::available() {
            let mut b = ActBuf::default();
            b.fill(ActKind::Q8B32, &x, 256, 2, isa);
            for (k, &v) in x.iter().enumerate() {
                let d = b.ds[k / 32][0];
                assert!(
                    (b.qs[k] as f32 * d - v).abs() <= d * 0.5 + 1e-6,
                    "{isa:?} {k}"
                );
            }
            for blk in 0..16 {
                let sum: i32 = b.qs[blk * 32..blk * 32 + 32]
                    .iter()
                    .map(|&q| q as i32)
                    .sum();
                assert!((b.ds[blk][1] - b.ds[blk][0] * sum as f32).abs() < 1e-4);
            }
            b.fill(ActKind::Q8B256, &x, 256, 2, isa);
            for (k, &v) in x.iter().enumerate() {
                let r = b.qs[k] as f32 * b.d[k / 256];
                assert!((r - v).abs() <= b.d[k / 256] * 0.5 + 1e-6, "{isa:?} {k}");
            }
            for g in 0..32 {
                let sum: i16 = b.qs[g * 16..g * 16 + 16].iter().map(|&q| q as i16).sum();
                assert_eq!(b.bsums[g], sum);
            }
        }
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let x = vec![0f32; 256];
        let mut b = ActBuf::default();
        b.fill(ActKind::Q8B256, &x, 256, 1, Isa::Scalar);
        assert_eq!(b.d[0], 0.0);
        assert!(b.qs[..256].iter().all(|&q| q == 0));
    }
}
