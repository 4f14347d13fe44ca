//! `BindCache`: bind groups kept across steps, keyed by layout and the buffers they bind.
//!
//! A decode step binds the same weights, KV cache, activations and parameter arenas every
//! time; creating its ~300 bind groups anew each step cost milliseconds of host time.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Mutex;

use crate::pipelines::Kernel;

/// Entries kept before the cache is emptied (buffers churned by varying step shapes).
const MAX_ENTRIES: usize = 16 * 1024;

type Key = (wgpu::BindGroupLayout, Vec<wgpu::Buffer>);

/// Bind groups by (layout, parameter buffer, storage buffers). Cached groups keep their
/// buffers alive: own the cache next to the buffers (e.g. in the model) so both go together.
#[derive(Default)]
pub struct BindCache {
    map: Mutex<HashMap<Key, wgpu::BindGroup>>,
    /// The pool's eviction count when the cache last started over.
    evictions: std::sync::atomic::AtomicU64,
}

/// A bind group of `kernel` with `params` (bound at dynamic offsets) and `storage`, whole.
pub(crate) fn create(
    device: &wgpu::Device,
    kernel: &Kernel,
    params: &wgpu::Buffer,
    storage: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: params,
            offset: 0,
            size: NonZeroU64::new(kernel.spec.layout.params_size()),
        }),
    }];
    for (i, b) in storage.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: b.as_entire_binding(),
        });
    }
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&kernel.spec.name),
        layout: &kernel.bind_layout,
        entries: &entries,
    })
}

impl BindCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cached bind groups.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every cached group (and the buffer references they hold).
    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }

    /// The cached group for these bindings, created on a miss. `evictions` is the buffer
    /// pool's count: when it has moved, the cache starts over, so groups no longer keep
    /// buffers the pool freed alive (a long prefill's, in GPU memory until then).
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        kernel: &Kernel,
        params: &wgpu::Buffer,
        storage: &[&wgpu::Buffer],
        evictions: u64,
    ) -> wgpu::BindGroup {
        use std::sync::atomic::Ordering;
        if self.evictions.swap(evictions, Ordering::Relaxed) != evictions {
            self.clear();
        }
        let mut bufs = Vec::with_capacity(storage.len() + 1);
        bufs.push(params.clone());
        bufs.extend(storage.iter().map(|&b| b.clone()));
        let key = (kernel.bind_layout.clone(), bufs);
        let Ok(mut m) = self.map.lock() else {
            return create(device, kernel, params, storage);
        };
        if let Some(g) = m.get(&key) {
            return g.clone();
        }
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        let g = create(device, kernel, params, storage);
        m.insert(key, g.clone());
        g
    }
}
