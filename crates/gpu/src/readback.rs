//! Read-backs that do not block the queue: a step copies its result into a mappable buffer
//! as its last command, and the host waits for that one submission only, so the next step
//! can be recorded and submitted before this one's result is read.

use std::sync::mpsc::{channel, Receiver};

use crate::pool::PooledBuffer;
use crate::{Error, GpuContext, Result, StepEncoder};

/// Usage of the staging buffers a read-back maps.
const STAGING_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);

/// A range copied into a staging buffer by a recorded step, to be read after its submit.
pub struct StagedRead {
    staging: PooledBuffer,
    len: u64,
}

/// Record a copy of `len` bytes of `buf` from `offset` into a staging buffer at the end of
/// `enc`'s commands (offset and length 4-byte aligned, inside `buf`).
pub fn stage_read(
    enc: &mut StepEncoder<'_>,
    buf: &wgpu::Buffer,
    offset: u64,
    len: u64,
) -> Result<StagedRead> {
    if len == 0
        || !offset.is_multiple_of(4)
        || !len.is_multiple_of(4)
        || offset.checked_add(len).is_none_or(|end| end > buf.size())
    {
        return Err(Error::shape(
            "stage_read",
            format!(
                "{len} bytes at {offset} of a {}-byte buffer (non-empty, 4-byte aligned)",
                buf.size()
            ),
        ));
    }
    let staging = enc.ctx().pool.get(len, STAGING_USAGE);
    enc.encoder()
        .copy_buffer_to_buffer(buf, offset, &staging, 0, len);
    Ok(StagedRead { staging, len })
}

impl StagedRead {
    /// Start mapping once the step that recorded the copy was submitted as `index`.
    pub fn start(self, index: wgpu::SubmissionIndex) -> PendingRead {
        let (tx, rx) = channel();
        self.staging
            .slice(0..self.len)
            .map_async(wgpu::MapMode::Read, move |r| {
                // The receiver may be gone if the read was abandoned; nothing to report then.
                let _ = tx.send(r);
            });
        PendingRead {
            staged: Some(self),
            index,
            rx,
        }
    }
}

/// A read-back whose copy was submitted; [`PendingRead::wait`] blocks until its submission
/// (and no later one) has finished.
pub struct PendingRead {
    staged: Option<StagedRead>,
    index: wgpu::SubmissionIndex,
    rx: Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl PendingRead {
    /// The bytes, once the submission that copied them is done.
    pub fn wait(mut self, ctx: &GpuContext) -> Result<Vec<u8>> {
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(self.index.clone()),
                timeout: None,
            })
            .map_err(|e| Error::Poll(e.to_string()))?;
        ctx.check_errors("read-back")?;
        self.rx
            .recv()
            .map_err(|e| Error::Poll(e.to_string()))?
            .map_err(|e| Error::Poll(e.to_string()))?;
        let Some(StagedRead { staging, len }) = self.staged.take() else {
            return Err(Error::Poll("read-back already taken".into()));
        };
        let out = staging
            .slice(0..len)
            .get_mapped_range()
            .map_err(|e| Error::Poll(e.to_string()))?
            .to_vec();
        staging.unmap();
        Ok(out)
    }
}

impl Drop for PendingRead {
    /// An abandoned read cancels its mapping, so the staging buffer goes back to the pool
    /// usable.
    fn drop(&mut self) {
        if let Some(s) = self.staged.take() {
            s.staging.unmap();
        }
    }
}
