//! Host ↔ device helpers for f32 activations: pooled storage buffers, upload, read-back.

use crate::pool::PooledBuffer;
use crate::{Error, GpuContext, Result};

/// Usage of activation buffers: bound as storage, written by the host, read back.
pub const ACTIVATION_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

fn byte_len(len: usize) -> Result<u64> {
    len.checked_mul(4)
        .map(|b| b as u64)
        .ok_or_else(|| Error::shape("buffer", format!("{len} floats overflow")))
}

/// A pooled activation buffer of `len` floats; contents unspecified.
pub fn storage_f32(ctx: &GpuContext, len: usize) -> Result<PooledBuffer> {
    let bytes = byte_len(len.max(1))?;
    if bytes > ctx.limits.max_buffer_size {
        return Err(Error::TooLarge {
            what: "activation buffer".into(),
            bytes,
            limit: ctx.limits.max_buffer_size,
        });
    }
    Ok(ctx.pool.get(bytes, ACTIVATION_USAGE))
}

/// A pooled activation buffer holding `data`. The write is queued: it happens before any
/// later submit, including of encoders recorded earlier.
pub fn upload_f32(ctx: &GpuContext, data: &[f32]) -> Result<PooledBuffer> {
    let buf = storage_f32(ctx, data.len())?;
    if !data.is_empty() {
        ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
    }
    Ok(buf)
}

/// A pooled activation buffer of `len` zeros.
pub fn zeroed_f32(ctx: &GpuContext, len: usize) -> Result<PooledBuffer> {
    let buf = storage_f32(ctx, len)?;
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("zero"),
        });
    enc.clear_buffer(&buf, 0, None);
    ctx.queue.submit([enc.finish()]);
    Ok(buf)
}

/// Read `len` floats starting at float `offset` of `buf` (needs `COPY_SRC`); waits for
/// all submitted work.
pub fn read_f32(
    ctx: &GpuContext,
    buf: &wgpu::Buffer,
    offset: usize,
    len: usize,
) -> Result<Vec<f32>> {
    let bytes = read_bytes(ctx, buf, byte_len(offset)?, byte_len(len)?)?;
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes))
}

/// Read `len` bytes at byte `offset` of `buf` (both multiples of 4; needs `COPY_SRC`);
/// waits for all submitted work.
pub fn read_bytes(ctx: &GpuContext, buf: &wgpu::Buffer, offset: u64, len: u64) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if !offset.is_multiple_of(4) || !len.is_multiple_of(4) || offset + len > buf.size() {
        return Err(Error::shape(
            "read_bytes",
            format!(
                "bytes {offset}..{} of a {}-byte buffer (4-byte aligned)",
                offset + len,
                buf.size()
            ),
        ));
    }
    let staging = ctx.pool.get(
        len,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("read"),
        });
    enc.copy_buffer_to_buffer(buf, offset, &staging, 0, len);
    ctx.queue.submit([enc.finish()]);
    let slice = staging.slice(0..len);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        // The receiver lives until after the wait below.
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|e| Error::Poll(e.to_string()))?
        .map_err(|e| Error::Poll(e.to_string()))?;
    let out = slice
        .get_mapped_range()
        .map_err(|e| Error::Poll(e.to_string()))?
        .to_vec();
    staging.unmap();
    Ok(out)
}
