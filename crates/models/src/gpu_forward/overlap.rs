//! Decode steps submitted ahead of their read-back: a step's picked token ids stay on the
//! GPU, where the next step takes them as its input tokens, so the host records and submits
//! step t + 1 while the GPU still runs step t and the GPU never waits for the host.

use marlin_gpu::{stage_read, GpuSampling, PendingRead, PooledBuffer};

use super::run::Submitted;
use super::sample::check_sampling;
use super::{GpuKvCache, GpuModel};
use crate::forward::SeqInput;
use crate::{Error, Result};

/// A submitted step whose picked token ids are not read yet.
pub struct PendingStep {
    step: Submitted,
    read: Option<PendingRead>,
    rows: usize,
    /// Sampling settings and scratch, alive until the step is done.
    _keep: Vec<PooledBuffer>,
}

impl PendingStep {
    /// Token ids this step picks (one per requested logits row).
    pub fn rows(&self) -> usize {
        self.rows
    }
}

impl GpuModel {
    /// Submit a step over `seqs` that picks a token for every requested logits row: the
    /// argmax, or a draw with `sampling[s]` of sequence `s` (as
    /// [`GpuModel::forward_sample`]). Returns without waiting. With `feed`, each sequence's
    /// token is the id `feed` picked for it: `seqs` then bring one token each (a
    /// placeholder, checked like any token), and `feed` picked one row per sequence.
    pub fn submit_pick(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &GpuKvCache,
        sampling: Option<&[GpuSampling]>,
        feed: Option<&PendingStep>,
    ) -> Result<PendingStep> {
        if let Some(s) = sampling {
            check_sampling(seqs, s)?;
        }
        let fed = match feed {
            Some(f) if f.rows != seqs.len() => {
                return Err(Error::Config(format!(
                    "{} fed token ids for {} sequences",
                    f.rows,
                    seqs.len()
                )))
            }
            Some(f) => Some(
                f.step
                    .extra
                    .as_ref()
                    .ok_or_else(|| Error::Config("the feeding step picked no token ids".into()))?,
            ),
            None => None,
        };
        let mut keep = Vec::new();
        let keep_ref = &mut keep;
        let (step, staged) = self.submit_step(
            seqs,
            kv,
            fed,
            Box::new(|enc, inp, logits| match sampling {
                Some(s) => self.record_sample_ids(enc, inp, logits, s, keep_ref),
                None => self.record_argmax_ids(enc, logits),
            }),
            |enc, inp, ids| match ids {
                Some(b) if inp.picked_rows() > 0 => {
                    Ok(Some(stage_read(enc, b, 0, inp.picked_rows() as u64 * 4)?))
                }
                _ => Ok(None),
            },
        )?;
        let rows = step.inp.picked_rows();
        let read = match (staged.flatten(), &step.index) {
            (Some(s), Some(index)) => Some(s.start(index.clone())),
            _ => None,
        };
        Ok(PendingStep {
            step,
            read,
            rows,
            _keep: keep,
        })
    }

    /// Wait for `p` and read the token ids it picked, in row order.
    pub fn finish_pick(&self, p: PendingStep) -> Result<Vec<u32>> {
        let PendingStep {
            step, read, rows, ..
        } = p;
        let ids = match read {
            Some(r) => {
                let bytes = r.wait(&self.ctx)?;
                let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
                debug_assert_eq!(ids.len(), rows);
                ids
            }
            None => Vec::new(),
        };
        self.complete(step);
        Ok(ids)
    }
}
