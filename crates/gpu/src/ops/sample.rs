//! GPU-side sampling launcher: temperature, top-k, top-p and min-p over logits rows with a
//! per-row seed and counter, in two dispatches (`sample_cands` per chunk of the vocabulary,
//! `sample_pick` per row), so a decode step reads back only token ids.

use super::{dispatch_op, to_u32, Span};
use crate::op::Op;
use crate::{upload_f32, Error, GpuContext, PooledBuffer, Result, StepEncoder};

/// Tokens one `sample_cands` workgroup covers (`CHUNK` in sample_body.wgsl).
pub const SAMPLE_CHUNK: usize = 4096;
/// Candidates kept per chunk and per row (`CAND`): top-k up to this is exact.
pub const SAMPLE_CANDIDATES: usize = 256;
/// Scratch words per chunk (`CW`).
const CHUNK_WORDS: usize = 8 + 2 * SAMPLE_CANDIDATES;
/// Largest vocabulary: the kernels count a row's candidates in 16 bits.
pub const SAMPLE_MAX_VOCAB: usize = 255 * SAMPLE_CHUNK;

/// How one logits row is sampled, with the CPU sampler's meaning: top-k, then top-p over
/// what is left, then min-p, then temperature. The draw is a Gumbel race whose noise is
/// hashed from (`seed`, `counter`, token id): the same settings and logits give the same
/// token, and stepping `counter` (e.g. the position) gives fresh draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuSampling {
    /// 0 (or less) = greedy argmax.
    pub temperature: f32,
    /// 0 = off; 1 = greedy.
    pub top_k: u32,
    /// In (0, 1]; 1 = off.
    pub top_p: f32,
    /// In [0, 1]; 0 = off.
    pub min_p: f32,
    pub seed: u64,
    pub counter: u32,
}

impl Default for GpuSampling {
    /// Greedy.
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 0,
            counter: 0,
        }
    }
}

impl GpuSampling {
    /// An error naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::shape("sample", m));
        if !self.temperature.is_finite() {
            return bad(format!("temperature {} is not finite", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p {} outside (0, 1]", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p {} outside [0, 1]", self.min_p));
        }
        Ok(())
    }

    /// The 8 words the kernels read per row.
    pub fn words(&self) -> [u32; 8] {
        [
            self.temperature.to_bits(),
            self.top_k,
            self.top_p.to_bits(),
            self.min_p.to_bits(),
            self.seed as u32,
            (self.seed >> 32) as u32,
            self.counter,
            0,
        ]
    }
}

/// A buffer of `rows`' settings (8 words each), validated, for [`record_sample`].
pub fn upload_sampling(ctx: &GpuContext, rows: &[GpuSampling]) -> Result<PooledBuffer> {
    let mut words = Vec::with_capacity(rows.len() * 8);
    for r in rows {
        r.validate()?;
        words.extend_from_slice(&r.words());
    }
    upload_f32(ctx, bytemuck::cast_slice(&words))
}

/// Scratch words [`record_sample`] needs for `rows` rows of `n` logits.
pub fn sample_scratch_words(rows: usize, n: usize) -> usize {
    rows * n.div_ceil(SAMPLE_CHUNK).max(1) * CHUNK_WORDS
}

/// Where [`record_sample`] reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct SampleIo<'a> {
    /// Row `r`'s `n` logits start at `x + r · stride`.
    pub x: Span<'a>,
    /// Row `r`'s settings: 8 words at `settings + 8 r` (see [`GpuSampling::words`]).
    pub settings: Span<'a>,
    /// At least [`sample_scratch_words`] words, from 0.
    pub scratch: &'a wgpu::Buffer,
    /// One u32 token id per row.
    pub out: Span<'a>,
}

/// Record the sampling of `rows` rows of `n` logits (`stride` floats apart) into one token
/// id each. NaN and −∞ logits are never drawn; an +∞ logit is taken (greedy), as on the CPU.
pub fn record_sample(
    enc: &mut StepEncoder<'_>,
    io: &SampleIo<'_>,
    rows: usize,
    n: usize,
    stride: usize,
) -> Result<()> {
    const OP: &str = "sample";
    if rows == 0 || n == 0 || stride < n || n > SAMPLE_MAX_VOCAB {
        return Err(Error::shape(
            OP,
            format!("{rows} rows of {n} (stride {stride}, at most {SAMPLE_MAX_VOCAB})"),
        ));
    }
    let xo = io.x.check(OP, "x", (rows - 1) * stride + n)?;
    let so = io.settings.check(OP, "settings", rows * 8)?;
    let oo = io.out.check(OP, "out", rows)?;
    Span::whole(io.scratch).check(OP, "scratch", sample_scratch_words(rows, n))?;
    let chunks = n.div_ceil(SAMPLE_CHUNK);
    let r = to_u32(OP, "rows", rows)?;
    let max = enc.ctx().limits.max_compute_workgroups_per_dimension;
    if r > max {
        return Err(Error::shape(OP, format!("{rows} rows exceed the grid")));
    }
    let params = [
        n as u32,
        r,
        xo,
        to_u32(OP, "stride", stride)?,
        oo,
        so,
        chunks as u32,
        0,
    ];
    let bufs = [io.x.buffer, io.settings.buffer, io.scratch];
    dispatch_op(enc, Op::SampleCands, params, &bufs, [chunks as u32, r, 1])?;
    let bufs = [io.settings.buffer, io.scratch, io.out.buffer];
    dispatch_op(enc, Op::SamplePick, params, &bufs, [r, 1, 1])
}
