//! Running a GPU forward step: upload the inputs, record the step, submit once, and read
//! back the requested logits rows or only their argmax ids.

use std::sync::atomic::Ordering;

use marlin_gpu::{
    read_bytes, read_f32, record_argmax, storage_f32, PooledBuffer, Span, StepEncoder,
};

use super::inputs::StepInputs;
use super::profile::Profile;
use super::step::LogitsPages;
use super::{GpuKvCache, GpuModel};
use crate::forward::{Logits, SeqInput};
use crate::Result;

impl GpuModel {
    /// Uploads the inputs, records and submits the step; `finish` records the read-back
    /// side (argmax) before submission and reads the result after.
    pub(super) fn run_step<T>(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &GpuKvCache,
        finish: impl FnOnce(
            &mut StepEncoder<'_>,
            &StepInputs,
            Option<&LogitsPages>,
        ) -> Result<Option<PooledBuffer>>,
        read: impl FnOnce(&StepInputs, Option<&LogitsPages>, Option<&PooledBuffer>) -> Result<T>,
    ) -> Result<T> {
        let ctx = self.ctx.as_ref();
        let mut prof = Profile::start(ctx);
        let inp = self.prepare(seqs, kv)?;
        if inp.n == 0 {
            return read(&inp, None, None);
        }
        let mut bufs = self.take_bufs(inp.n, &inp.words, &inp.cs)?;
        self.fit_attn_part(&mut bufs.scratch, &inp)?;
        if let Some(p) = prof.as_mut() {
            p.mark("prepare");
        }
        let mut enc = StepEncoder::new(ctx, "forward").with_bind_cache(&self.bind_cache);
        if inp.prompt {
            enc = enc.with_gemv_multi_cap(marlin_gpu::registry::GEMV_MULTI_PROMPT_MAX);
        }
        if let Some(p) = &prof {
            enc = p.attach(enc);
        }
        let (words, cs, scratch) = (&bufs.words, &bufs.cs, &bufs.scratch);
        let logits = self.record_step(&mut enc, &inp, kv, words, cs, scratch)?;
        let extra = finish(&mut enc, &inp, logits.as_ref())?;
        let dispatches = enc.dispatch_count();
        self.last_dispatches.store(dispatches, Ordering::Relaxed);
        if let Some(p) = prof.as_mut() {
            p.resolve(&mut enc);
            p.mark("record");
        }
        let submits = enc.submit_count() + 1;
        enc.submit()?;
        if let Some(p) = prof.as_mut() {
            p.mark("submit");
        }
        let out = read(&inp, logits.as_ref(), extra.as_ref())?;
        self.put_bufs(bufs);
        if let Some(mut p) = prof {
            p.mark("read");
            p.report(ctx, inp.n, dispatches, submits);
        }
        Ok(out)
    }

    /// Run one step over `seqs`, appending their K/V to `kv`; same contract as the CPU
    /// [`Model::forward`](crate::Model::forward).
    pub fn forward(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<Logits> {
        let vocab = self.config.vocab;
        self.run_step(
            seqs,
            kv,
            |_, _, _| Ok(None),
            |inp, logits, _| {
                let mut data = Vec::new();
                for (b, rows) in logits.iter().flat_map(|l| l.iter()) {
                    data.extend(read_f32(&self.ctx, b, 0, rows * vocab)?);
                }
                Ok(Logits {
                    data,
                    vocab,
                    rows_per_seq: inp.picks.iter().map(|r| r.len()).collect(),
                })
            },
        )
    }

    /// Like [`GpuModel::forward`], but reads back only the argmax token id of every
    /// requested logits row (greedy decoding), in row order.
    pub fn forward_argmax(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<Vec<u32>> {
        let vocab = self.config.vocab;
        self.run_step(
            seqs,
            kv,
            |enc, _, logits| {
                let Some(l) = logits else { return Ok(None) };
                let ids = storage_f32(&self.ctx, l.rows)?;
                let mut row = 0;
                for (b, rows) in l.iter() {
                    let out = Span::new(&ids, row);
                    record_argmax(enc, Span::whole(b), out, rows, vocab, vocab)?;
                    row += rows;
                }
                Ok(Some(ids))
            },
            |inp, _, ids| {
                let m: usize = inp.picks.iter().map(|r| r.len()).sum();
                match ids {
                    Some(b) => Ok(bytemuck::pod_collect_to_vec(&read_bytes(
                        &self.ctx,
                        b,
                        0,
                        m as u64 * 4,
                    )?)),
                    None => Ok(Vec::new()),
                }
            },
        )
    }

    /// Dispatches recorded by the last step (one submit each).
    pub fn dispatch_count(&self) -> u32 {
        self.last_dispatches.load(Ordering::Relaxed)
    }
}
