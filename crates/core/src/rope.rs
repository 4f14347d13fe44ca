//! Rotary position embedding (RoPE) configuration: pairing convention, frequency scaling and
//! the per-pair inverse frequencies every backend rotates with.

use crate::{Error, Result};

/// Which dimensions of a head form a rotated pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs `(2i, 2i+1)`: ggml mode 0, GGUF `llama` (Q/K permuted by the converter).
    Normal,
    /// Half-split pairs `(i, i + n_rot/2)`: "rotate_half", HF checkpoints, GGUF qwen2/gemma.
    Neox,
}

/// How the base frequencies are stretched for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Positions divided by `factor` (every frequency divided by `factor`).
    Linear { factor: f32 },
    /// Llama 3.1 scaling, as HF `_compute_llama3_parameters`: low frequencies divided by
    /// `factor`, high ones kept, the band between smoothly interpolated.
    Llama3 {
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_context: usize,
    },
}

/// Everything needed to rotate one head.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// Rotated dimensions per head (even, ≤ head_dim); the rest pass through unchanged.
    pub n_rot: usize,
    /// θ base (`rope_theta`, `rope.freq_base`).
    pub base: f32,
    /// Pairing convention.
    pub mode: RopeMode,
    /// Frequency scaling.
    pub scaling: RopeScaling,
    /// GGUF `rope_freqs.weight`: frequency `i` is divided by `freq_factors[i]` (n_rot/2 values).
    pub freq_factors: Option<Vec<f32>>,
}

impl RopeConfig {
    /// Unscaled RoPE over `n_rot` dims with the given base and mode.
    pub fn new(n_rot: usize, base: f32, mode: RopeMode) -> Self {
        Self {
            n_rot,
            base,
            mode,
            scaling: RopeScaling::None,
            freq_factors: None,
        }
    }

    /// Checks the config against a head dimension: `n_rot` even, non-zero and ≤ `head_dim`,
    /// a positive base, positive scaling factors, and `n_rot/2` frequency factors.
    pub fn validate(&self, head_dim: usize) -> Result<()> {
        if self.n_rot == 0 || !self.n_rot.is_multiple_of(2) || self.n_rot > head_dim {
            return Err(Error::Shape(format!(
                "rope: n_rot {} must be even, non-zero and <= head_dim {head_dim}",
                self.n_rot
            )));
        }
        if !(self.base.is_finite() && self.base > 0.0) {
            return Err(Error::Shape(format!("rope: bad base {}", self.base)));
        }
        let positive = |v: f32| v.is_finite() && v > 0.0;
        let scaling_ok = match &self.scaling {
            RopeScaling::None => true,
            RopeScaling::Linear { factor } => positive(*factor),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => {
                positive(*factor)
                    && positive(*low_freq_factor)
                    && high_freq_factor > low_freq_factor
                    && high_freq_factor.is_finite()
                    && *original_context > 0
            }
        };
        if !scaling_ok {
            return Err(Error::Shape(format!(
                "rope: bad scaling {:?}",
                self.scaling
            )));
        }
        if let Some(ff) = &self.freq_factors {
            if ff.len() != self.n_rot / 2 || !ff.iter().all(|&v| positive(v)) {
                return Err(Error::Shape(format!(
                    "rope: need {} positive freq factors, got {}",
                    self.n_rot / 2,
                    ff.len()
                )));
            }
        }
        Ok(())
    }

    /// The `n_rot/2` inverse frequencies: pair `i` turns by `pos · inv_freqs()[i]` radians.
    /// Base `base^(−2i/n_rot)`, then scaling, then division by `freq_factors`.
    /// Computed in f64; call [`RopeConfig::validate`] first for meaningful values.
    pub fn inv_freqs(&self) -> Vec<f32> {
        let half = self.n_rot / 2;
        let base = f64::from(self.base);
        (0..half)
            .map(|i| {
                let plain = base.powf(-((2 * i) as f64) / self.n_rot as f64);
                let scaled = self.scale(plain);
                let factor = self
                    .freq_factors
                    .as_ref()
                    .and_then(|ff| ff.get(i))
                    .map_or(1.0, |&f| f64::from(f));
                (scaled / factor) as f32
            })
            .collect()
    }

    fn scale(&self, inv_freq: f64) -> f64 {
        match &self.scaling {
            RopeScaling::None => inv_freq,
            RopeScaling::Linear { factor } => inv_freq / f64::from(*factor),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => {
                let (factor, low, high) = (
                    f64::from(*factor),
                    f64::from(*low_freq_factor),
                    f64::from(*high_freq_factor),
                );
                let old_ctx = *original_context as f64;
                let low_freq_wavelen = old_ctx / low;
                let high_freq_wavelen = old_ctx / high;
                let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
                if wavelen < high_freq_wavelen {
                    inv_freq
                } else if wavelen > low_freq_wavelen {
                    inv_freq / factor
                } else {
                    let smooth = (old_ctx / wavelen - low) / (high - low);
                    (1.0 - smooth) * inv_freq / factor + smooth * inv_freq
                }
            }
        }
    }
}
