//! Running a GPU forward step: upload the inputs, record the step, submit once, and read
//! back the requested logits rows or only their argmax ids.

use std::sync::atomic::Ordering;

use marlin_gpu::{
    read_bytes, read_f32, record_argmax, storage_f32, PooledBuffer, Span, StepEncoder,
};

use super::bufs::StepBufs;
use super::inputs::StepInputs;
use super::profile::Profile;
use super::step::LogitsPages;
use super::{GpuKvCache, GpuModel};
use crate::forward::{Logits, SeqInput};
use crate::{Error, Result};

/// What a step records after its logits: the buffer it wants read back, if any.
pub(super) type Finish<'a> = dyn FnOnce(&mut StepEncoder<'_>, &StepInputs, Option<&LogitsPages>) -> Result<Option<PooledBuffer>>
    + 'a;

/// A step recorded and submitted (or, without tokens, only prepared), not yet read back.
pub(super) struct Submitted {
    pub(super) inp: StepInputs,
    pub(super) logits: Option<LogitsPages>,
    /// The buffer `finish` asked to read back.
    pub(super) extra: Option<PooledBuffer>,
    /// The step's submission (none for a step without tokens).
    pub(super) index: Option<marlin_gpu::wgpu::SubmissionIndex>,
    bufs: Option<StepBufs>,
    prof: Option<(Profile, u32, u32)>,
}

impl GpuModel {
    /// Prepare, record and submit a step over `seqs`. `feed`: a buffer of u32 token ids that
    /// replace the step's token ids, one per sequence (every sequence brings one token),
    /// copied on the GPU before the step runs. `finish` records the read-back side (argmax,
    /// sampling) after the logits; `after` adds commands once `finish` is done.
    pub(super) fn submit_step<A>(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &GpuKvCache,
        feed: Option<&PooledBuffer>,
        finish: Box<Finish<'_>>,
        after: impl FnOnce(&mut StepEncoder<'_>, &StepInputs, Option<&PooledBuffer>) -> Result<A>,
    ) -> Result<(Submitted, Option<A>)> {
        let ctx = self.ctx.as_ref();
        let mut prof = Profile::start(ctx);
        let inp = self.prepare(seqs, kv)?;
        if inp.n == 0 {
            let s = Submitted {
                inp,
                logits: None,
                extra: None,
                index: None,
                bufs: None,
                prof: None,
            };
            return Ok((s, None));
        }
        let mut bufs = self.take_bufs(inp.n, &inp.words, &inp.cs)?;
        self.fit_attn_part(&mut bufs.scratch, &inp)?;
        if let Some(p) = prof.as_mut() {
            p.mark("prepare");
        }
        let mut enc = StepEncoder::new(ctx, "forward").with_bind_cache(&self.bind_cache);
        if let Some(ids) = feed {
            if seqs.iter().any(|s| s.tokens.len() != 1) {
                return Err(Error::Config(
                    "a step fed with GPU token ids takes one token per sequence".into(),
                ));
            }
            let len = (inp.n * 4) as u64;
            if ids.size() < len {
                return Err(Error::Config(format!(
                    "{} fed token ids for {} sequences",
                    ids.size() / 4,
                    inp.n
                )));
            }
            // Before the first dispatch, so the step keeps its single compute pass.
            enc.encoder()
                .copy_buffer_to_buffer(ids, 0, &bufs.words, 0, len);
            // The step that feeds it still runs on the GPU while this one is recorded, so
            // one command buffer loses no time waiting for the host, and chunks would only
            // add gaps between command buffers (H200, GLM-4.7-Flash q4_0 decode: 178.9 →
            // 185.6 tok/s, run "EW"); `MARLIN_GPU_SUBMIT_EVERY` still rules when set.
            if std::env::var_os("MARLIN_GPU_SUBMIT_EVERY").is_none() {
                enc = enc.with_submit_every(0);
            }
        }
        if inp.prompt {
            enc = enc.with_gemv_multi_cap(marlin_gpu::registry::GEMV_MULTI_PROMPT_MAX);
        }
        if let Some(p) = &prof {
            enc = p.attach(enc);
        }
        let logits = self.record_step(&mut enc, &inp, kv, &bufs.words, &bufs.cs, &bufs.scratch)?;
        let extra = finish(&mut enc, &inp, logits.as_ref())?;
        let staged = after(&mut enc, &inp, extra.as_ref())?;
        let dispatches = enc.dispatch_count();
        self.last_dispatches.store(dispatches, Ordering::Relaxed);
        if let Some(p) = prof.as_mut() {
            p.resolve(&mut enc);
            p.mark("record");
        }
        let submits = enc.submit_count() + 1;
        let index = enc.submit()?;
        if let Some(p) = prof.as_mut() {
            p.mark("submit");
        }
        let s = Submitted {
            inp,
            logits,
            extra,
            index: Some(index),
            bufs: Some(bufs),
            prof: prof.map(|p| (p, dispatches, submits)),
        };
        Ok((s, Some(staged)))
    }

    /// Hand a read step's buffers back and print its profile line.
    pub(super) fn complete(&self, s: Submitted) {
        if let Some(b) = s.bufs {
            self.put_bufs(b);
        }
        if let Some((mut p, dispatches, submits)) = s.prof {
            p.mark("read");
            p.report(&self.ctx, s.inp.n, dispatches, submits);
        }
    }

    /// Uploads the inputs, records and submits the step; `finish` records the read-back
    /// side (argmax) before submission and `read` reads the result after.
    pub(super) fn run_step<T>(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &GpuKvCache,
        finish: Box<Finish<'_>>,
        read: impl FnOnce(&StepInputs, Option<&LogitsPages>, Option<&PooledBuffer>) -> Result<T>,
    ) -> Result<T> {
        let (s, _) = self.submit_step(seqs, kv, None, finish, |_, _, _| Ok(()))?;
        let out = read(&s.inp, s.logits.as_ref(), s.extra.as_ref())?;
        self.complete(s);
        Ok(out)
    }

    /// Run one step over `seqs`, appending their K/V to `kv`; same contract as the CPU
    /// [`Model::forward`](crate::Model::forward).
    pub fn forward(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<Logits> {
        let vocab = self.config.vocab;
        self.run_step(seqs, kv, Box::new(|_, _, _| Ok(None)), |inp, logits, _| {
            let mut data = Vec::new();
            for (b, rows) in logits.iter().flat_map(|l| l.iter()) {
                data.extend(read_f32(&self.ctx, b, 0, rows * vocab)?);
            }
            Ok(Logits {
                data,
                vocab,
                rows_per_seq: inp.picks.iter().map(|r| r.len()).collect(),
            })
        })
    }

    /// Record the argmax of every logits row into a new buffer of u32 ids, in row order.
    pub(super) fn record_argmax_ids(
        &self,
        enc: &mut StepEncoder<'_>,
        logits: Option<&LogitsPages>,
    ) -> Result<Option<PooledBuffer>> {
        let vocab = self.config.vocab;
        let Some(l) = logits else { return Ok(None) };
        let ids = storage_f32(&self.ctx, l.rows)?;
        let mut row = 0;
        for (b, rows) in l.iter() {
            let out = Span::new(&ids, row);
            record_argmax(enc, Span::whole(b), out, rows, vocab, vocab)?;
            row += rows;
        }
        Ok(Some(ids))
    }

    /// The `m` token ids at the start of `ids` (none without a buffer).
    pub(super) fn read_ids(&self, ids: Option<&PooledBuffer>, m: usize) -> Result<Vec<u32>> {
        match ids {
            Some(b) => Ok(bytemuck::pod_collect_to_vec(&read_bytes(
                &self.ctx,
                b,
                0,
                m as u64 * 4,
            )?)),
            None => Ok(Vec::new()),
        }
    }

    /// Like [`GpuModel::forward`], but reads back only the argmax token id of every
    /// requested logits row (greedy decoding), in row order.
    pub fn forward_argmax(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<Vec<u32>> {
        self.run_step(
            seqs,
            kv,
            Box::new(|enc, _, logits| self.record_argmax_ids(enc, logits)),
            |inp, _, ids| self.read_ids(ids, inp.picked_rows()),
        )
    }

    /// Dispatches recorded by the last step (one submit each).
    pub fn dispatch_count(&self) -> u32 {
        self.last_dispatches.load(Ordering::Relaxed)
    }
}
