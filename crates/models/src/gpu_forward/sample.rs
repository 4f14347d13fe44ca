//! Sampled decoding on the GPU: the step's logits rows are sampled in place (temperature,
//! top-k, top-p, min-p, seeded) and only the token ids are read back.

use marlin_gpu::{
    record_sample, sample_scratch_words, storage_f32, upload_sampling, GpuSampling, PooledBuffer,
    SampleIo, Span, StepEncoder,
};

use super::inputs::StepInputs;
use super::step::LogitsPages;
use super::{GpuKvCache, GpuModel};
use crate::forward::SeqInput;
use crate::{Error, Result};

impl GpuModel {
    /// Like [`GpuModel::forward_argmax`], but draws each requested logits row with
    /// `sampling[s]` of its sequence `s` (one entry per sequence); a sequence's `i`-th row
    /// uses counter `counter + i`. Returns the token ids in row order.
    pub fn forward_sample(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &GpuKvCache,
        sampling: &[GpuSampling],
    ) -> Result<Vec<u32>> {
        check_sampling(seqs, sampling)?;
        let mut keep = Vec::new();
        let keep_ref = &mut keep;
        self.run_step(
            seqs,
            kv,
            Box::new(|enc, inp, logits| {
                self.record_sample_ids(enc, inp, logits, sampling, keep_ref)
            }),
            |inp, _, ids| self.read_ids(ids, inp.picked_rows()),
        )
    }

    /// Record the draw of every logits row into a new buffer of u32 ids, in row order;
    /// the settings and scratch buffers go to `keep`, to outlive the step.
    pub(super) fn record_sample_ids(
        &self,
        enc: &mut StepEncoder<'_>,
        inp: &StepInputs,
        logits: Option<&LogitsPages>,
        sampling: &[GpuSampling],
        keep: &mut Vec<PooledBuffer>,
    ) -> Result<Option<PooledBuffer>> {
        let vocab = self.config.vocab;
        let Some(l) = logits else { return Ok(None) };
        let mut rows = Vec::with_capacity(l.rows);
        for (s, r) in sampling.iter().zip(&inp.picks) {
            rows.extend((0..r.len()).map(|i| GpuSampling {
                counter: s.counter.wrapping_add(i as u32),
                ..*s
            }));
        }
        let settings = upload_sampling(&self.ctx, &rows)?;
        let per_page = l.per_page.min(l.rows);
        let scratch = storage_f32(&self.ctx, sample_scratch_words(per_page, vocab))?;
        let ids = storage_f32(&self.ctx, l.rows)?;
        let mut row = 0;
        for (b, n) in l.iter() {
            let io = SampleIo {
                x: Span::whole(b),
                settings: Span::new(&settings, 8 * row),
                scratch: &scratch,
                out: Span::new(&ids, row),
            };
            record_sample(enc, &io, n, vocab, vocab)?;
            row += n;
        }
        keep.push(settings);
        keep.push(scratch);
        Ok(Some(ids))
    }
}

/// One sampling setting per sequence.
pub(super) fn check_sampling(seqs: &[SeqInput<'_>], sampling: &[GpuSampling]) -> Result<()> {
    if sampling.len() != seqs.len() {
        return Err(Error::Config(format!(
            "{} sampling settings for {} sequences",
            sampling.len(),
            seqs.len()
        )));
    }
    Ok(())
}
