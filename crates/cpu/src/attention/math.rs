//! Small numeric kernels of the attention inner loop: dot product (portable, or AVX2 + FMA
//! intrinsics) and a vectorizable exp.

/// How the inner loop computes a dot product: [`Portable`] everywhere, [`Fma`] on x86-64
/// with AVX2 + FMA.
pub(super) trait Dot {
    /// `Σ a[i]·b[i]` over `min(a.len(), b.len())` values.
    fn dot(a: &[f32], b: &[f32]) -> f32;
}

/// Plain Rust: sixteen independent lanes, reduced as a tree.
pub(super) struct Portable;

impl Dot for Portable {
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        const W: usize = 16;
        let (ca, cb) = (a.chunks_exact(W), b.chunks_exact(W));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        let mut acc = [0.0f32; W];
        for (x, y) in ca.zip(cb) {
            for i in 0..W {
                acc[i] += x[i] * y[i];
            }
        }
        for i in 0..8 {
            acc[i] += acc[i + 8];
        }
        for i in 0..4 {
            acc[i] += acc[i + 4];
        }
        (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
    }
}

/// AVX2 + FMA intrinsics. Only reached through the kernel compiled for those features, which
/// is chosen after detecting them at run time.
#[cfg(target_arch = "x86_64")]
pub(super) struct Fma;

#[cfg(target_arch = "x86_64")]
impl Dot for Fma {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `Fma` is only used by `dispatch::attend_range_avx2`, which runs only after
        // AVX2 and FMA were detected.
        unsafe { dot_fma(a, b) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): `i + 8 ≤ n` before each 8-wide load at offset `i`.
    while i + 32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(i + 8 * j)),
                    _mm256_loadu_ps(pb.add(i + 8 * j)),
                )
            };
            *s = _mm256_fmadd_ps(x, y, *s);
        }
        i += 32;
    }
    while i + 8 <= n {
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let x = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    let x = _mm_add_ss(x, _mm_shuffle_ps::<1>(x, x));
    let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum();
    _mm_cvtss_f32(x) + tail
}

/// `x ← exp(x)` for every element, inputs clamped to [−87, 88] (results within 2 ulp of
/// libm's). Cephes `expf`: `x = n·ln2 + r`, a degree-6 polynomial in `r`, times `2^n`.
#[inline]
pub(super) fn exp_inplace(x: &mut [f32]) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    for v in x.iter_mut() {
        let xc = v.clamp(-87.0, 88.0);
        let t = xc * LOG2E + ROUND;
        let n = t - ROUND;
        let ni = t.to_bits() as i32 - ROUND.to_bits() as i32;
        let r = xc - n * LN2_HI - n * LN2_LO;
        let mut p = 1.987_569_2e-4f32;
        p = p * r + 1.398_2e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 0.166_666_65;
        p = p * r + 0.5;
        let y = p * r * r + r + 1.0;
        *v = y * f32::from_bits(((ni + 127) as u32) << 23);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut x: Vec<f32> = (0..20_000).map(|i| -87.0 + i as f32 * 0.00875).collect();
        x.extend([0.0, -1e-8, 1.0, 10.0, 88.0]);
        let mut y = x.clone();
        exp_inplace(&mut y);
        for (&a, &b) in x.iter().zip(&y) {
            let want = f64::from(a).exp();
            assert!(
                ((f64::from(b) - want) / want).abs() < 3e-7,
                "exp({a}) = {b}, want {want}"
            );
        }
        let mut z = [-1000.0f32];
        exp_inplace(&mut z);
        assert!(z[0] < 1e-37 && z[0] >= 0.0);
    }

    #[test]
    fn dot_matches_f64() {
        for n in [1, 7, 8, 16, 31, 32, 40, 64, 80, 96, 127, 128, 256] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            assert!(
                (f64::from(Portable::dot(&a, &b)) - want).abs() < 1e-5,
                "n={n}"
            );
            #[cfg(target_arch = "x86_64")]
            if crate::matmul::Isa::Avx2.is_available() {
                assert!(
                    (f64::from(Fma::dot(&a, &b)) - want).abs() < 1e-5,
                    "fma n={n}"
                );
            }
        }
    }
}
