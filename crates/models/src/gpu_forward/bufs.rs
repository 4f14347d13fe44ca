//! Step buffers kept between steps: activations and the input uploads are reused while the
//! step size stays the same, so a decode step allocates nothing and binds the same buffers
//! (whose bind groups the model's `BindCache` then reuses).

use marlin_gpu::{storage_f32, PooledBuffer};

use super::step::Scratch;
use super::GpuModel;
use crate::Result;

/// A step's buffers: activations for `n` tokens and the u32 word / RoPE row uploads.
pub(super) struct StepBufs {
    pub(super) n: usize,
    pub(super) scratch: Scratch,
    pub(super) words: PooledBuffer,
    pub(super) cs: PooledBuffer,
}

/// `old` when it holds at least `len` floats, else a new buffer.
fn fit(ctx: &marlin_gpu::GpuContext, old: PooledBuffer, len: usize) -> Result<PooledBuffer> {
    if old.size() >= (len.max(1) * 4) as u64 {
        Ok(old)
    } else {
        Ok(storage_f32(ctx, len)?)
    }
}

impl GpuModel {
    /// Buffers for a step of `n` tokens with `words` u32 words and `cs` RoPE floats, written
    /// with the step's inputs. Taken out of the model while the step runs (a concurrent
    /// step allocates its own) and handed back with [`GpuModel::put_bufs`].
    pub(super) fn take_bufs(&self, n: usize, words: &[u32], cs: &[f32]) -> Result<StepBufs> {
        let ctx = self.ctx.as_ref();
        let kept = self.step_bufs.lock().ok().and_then(|mut b| b.take());
        let mut b = match kept {
            Some(b) if b.n == n => StepBufs {
                n,
                scratch: b.scratch,
                words: fit(ctx, b.words, words.len())?,
                cs: fit(ctx, b.cs, cs.len())?,
            },
            _ => StepBufs {
                n,
                scratch: self.scratch(n)?,
                words: storage_f32(ctx, words.len())?,
                cs: storage_f32(ctx, cs.len())?,
            },
        };
        // Queue writes land before this step's commands and after every earlier submit.
        if !words.is_empty() {
            ctx.queue
                .write_buffer(&b.words, 0, bytemuck::cast_slice(words));
        }
        if !cs.is_empty() {
            ctx.queue.write_buffer(&b.cs, 0, bytemuck::cast_slice(cs));
        }
        b.n = n;
        Ok(b)
    }

    /// Keep `b` for the next step.
    pub(super) fn put_bufs(&self, b: StepBufs) {
        if let Ok(mut slot) = self.step_bufs.lock() {
            *slot = Some(b);
        }
    }
}
