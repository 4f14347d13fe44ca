//! Buffer pool: buffers are reused by (size class, usage); a dropped `PooledBuffer` goes back.
//! A request gets the oldest idle buffer of its class, so a step that repeats (decode) gets
//! the same buffers each time whatever else sits idle, and its bind groups stay cached
//! (handing out the last one returned cycled decode steps through the idle buffers a long
//! prefill left behind, re-creating bind groups for many steps).
//!
//! Reuse is safe across submissions because wgpu orders work on one queue; within one
//! recording, a buffer released and taken again is ordered by wgpu's pass barriers. The one
//! hazard is `queue.write_buffer` on a reused buffer, which lands before commands recorded
//! earlier but not yet submitted: upload into fresh buffers, or submit first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Smallest size class, bytes.
const MIN_CLASS: u64 = 256;
/// Above this, classes step by an eighth of the power of two instead of doubling.
const FINE_ABOVE: u64 = 1 << 20;
/// Idle bytes the pool keeps; past them it frees its largest idle buffers first.
const DEFAULT_IDLE_CAP: u64 = 1 << 30;

/// The size a request of `size` bytes is rounded up to.
pub fn size_class(size: u64) -> u64 {
    let size = size.max(MIN_CLASS);
    let p = size.next_power_of_two();
    if p <= FINE_ABOVE {
        return p;
    }
    let step = p / 16;
    size.div_ceil(step) * step
}

type Key = (u64, u32);

/// Idle buffers of one class, newest first (`pop` gives the oldest), by creation number.
type Idle = Vec<(u64, wgpu::Buffer)>;

struct Shared {
    free: HashMap<Key, Idle>,
    idle_bytes: u64,
    idle_cap: u64,
    created: u64,
    reused: u64,
    /// Buffers freed past the idle cap (bind caches drop their groups when it moves);
    /// shared with the pool, which reads it without the lock on every dispatch.
    evicted: Arc<AtomicU64>,
}

impl Shared {
    /// Free one idle buffer of the largest size class; false when none is idle.
    fn evict_largest(&mut self) -> bool {
        let key = self
            .free
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| *k)
            .max();
        let Some(key) = key else { return false };
        if let Some(v) = self.free.get_mut(&key) {
            // The newest goes: the oldest are the ones steady steps keep taking.
            if !v.is_empty() {
                v.remove(0);
            }
            self.idle_bytes = self.idle_bytes.saturating_sub(key.0);
        }
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Put `buffer` (creation number `id`) back among the idle ones of `key`.
    fn put(&mut self, key: Key, id: u64, buffer: wgpu::Buffer) {
        let v = self.free.entry(key).or_default();
        let at = v.partition_point(|(i, _)| *i > id);
        v.insert(at, (id, buffer));
    }
}

/// A cache of device buffers keyed by size class and usage.
pub struct BufferPool {
    device: wgpu::Device,
    shared: Arc<Mutex<Shared>>,
    evicted: Arc<AtomicU64>,
}

/// A pooled buffer: derefs to the `wgpu::Buffer`; returns to the pool on drop.
pub struct PooledBuffer {
    buffer: wgpu::Buffer,
    /// Creation number (older buffers are handed out first).
    id: u64,
    len: u64,
    key: Key,
    pool: Weak<Mutex<Shared>>,
}

/// Counters for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub created: u64,
    pub reused: u64,
    pub idle_bytes: u64,
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        let evicted = Arc::new(AtomicU64::new(0));
        Self {
            device,
            shared: Arc::new(Mutex::new(Shared {
                free: HashMap::new(),
                idle_bytes: 0,
                idle_cap: DEFAULT_IDLE_CAP,
                created: 0,
                reused: 0,
                evicted: evicted.clone(),
            })),
            evicted,
        }
    }

    /// A buffer of at least `len` bytes with `usage`; its contents are unspecified.
    pub fn get(&self, len: u64, usage: wgpu::BufferUsages) -> PooledBuffer {
        let key = (size_class(len), usage.bits());
        let reused = self.shared.lock().ok().and_then(|mut s| {
            let b = s.free.get_mut(&key).and_then(Vec::pop);
            if b.is_some() {
                s.idle_bytes = s.idle_bytes.saturating_sub(key.0);
                s.reused += 1;
            }
            b
        });
        let (id, buffer) = reused.unwrap_or_else(|| {
            let id = self.shared.lock().map_or(0, |mut s| {
                s.created += 1;
                s.created
            });
            let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("marlin-pool"),
                size: key.0,
                usage,
                mapped_at_creation: false,
            });
            (id, b)
        });
        PooledBuffer {
            buffer,
            id,
            len,
            key,
            pool: Arc::downgrade(&self.shared),
        }
    }

    /// Keep at most `bytes` of idle buffers (default 1 GiB), freeing the largest now.
    pub fn set_idle_cap(&self, bytes: u64) {
        if let Ok(mut s) = self.shared.lock() {
            s.idle_cap = bytes;
            while s.idle_bytes > bytes && s.evict_largest() {}
        }
    }

    /// Idle buffers freed so far to stay under the cap. A bind group keeps its buffers
    /// alive, so caches of bind groups start over when this moves (see `BindCache`).
    pub fn evictions(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Free every idle buffer.
    pub fn trim(&self) {
        if let Ok(mut s) = self.shared.lock() {
            s.free.clear();
            s.idle_bytes = 0;
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> PoolStats {
        self.shared
            .lock()
            .map(|s| PoolStats {
                created: s.created,
                reused: s.reused,
                idle_bytes: s.idle_bytes,
            })
            .unwrap_or(PoolStats {
                created: 0,
                reused: 0,
                idle_bytes: 0,
            })
    }
}

impl PooledBuffer {
    /// The buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Bytes requested (the buffer itself may be larger).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when zero bytes were requested.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::ops::Deref for PooledBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.buffer()
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        if let Ok(mut s) = pool.lock() {
            // Over the cap, the largest idle buffers go first (a long prefill's), not the
            // one coming back: a decode step must get its buffers again, or every step
            // makes new ones and binds them anew (GLM-4.7-Flash after a 512-token prompt:
            // ~10 ms of bind groups per token).
            while s.idle_bytes + self.key.0 > s.idle_cap && s.evict_largest() {}
            if s.idle_bytes + self.key.0 <= s.idle_cap {
                s.idle_bytes += self.key.0;
                // wgpu buffers are reference-counted handles; the clone is the same buffer.
                s.put(self.key, self.id, self.buffer.clone());
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn classes_round_up_with_bounded_waste() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(257), 512);
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 1), (1 << 20) + (1 << 17));
        for s in [3u64 << 20, 100 << 20, 1_000_000_007] {
            let c = size_class(s);
            assert!(
                c >= s && (c - s) * 16 <= s.next_power_of_two(),
                "{s} -> {c}"
            );
        }
    }
}
