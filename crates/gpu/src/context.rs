//! `GpuContext`: one opened adapter (device + queue) with its kernel registry and buffer pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use marlin_core::QuantFormat;

use crate::op::Op;
use crate::pipelines::Registry;
use crate::pool::BufferPool;
use crate::registry::{gemv_multi_max_from_env, matmul_op_for, spec, KernelKey, Variant};
use crate::selector::{self, AdapterSummary, DeviceSelector, GpuFeatures};
use crate::{Error, Result};

/// `MARLIN_GPU_DP4A=0` turns the 8-bit-activation GEMV off (decode comparisons).
fn dp4a_allowed() -> bool {
    std::env::var("MARLIN_GPU_DP4A").as_deref() != Ok("0")
}

/// `MARLIN_GPU_TRELLIS_TILE=0` sends trellis GEMVs back to the f32 kernels.
fn trellis_tile_from_env() -> bool {
    std::env::var("MARLIN_GPU_TRELLIS_TILE").as_deref() != Ok("0")
}

/// `MARLIN_GPU_COOP=0` turns the tensor-core GEMM off (prefill comparisons).
fn coop_allowed() -> bool {
    std::env::var("MARLIN_GPU_COOP").as_deref() != Ok("0")
}

/// Features requested when the adapter has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP
        | wgpu::Features::SUBGROUP_BARRIER
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
        | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
        | wgpu::Features::MEMORY_DECORATION_COHERENT
}

/// An opened GPU: device, queue, the adapter's description, kernels and pooled buffers.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// The adapter as `devices` lists it.
    pub summary: AdapterSummary,
    /// Features enabled on the device (a subset of the adapter's).
    pub features: GpuFeatures,
    /// Limits of the device (the adapter's maximum).
    pub limits: wgpu::Limits,
    pub(crate) registry: Registry,
    pub(crate) pool: BufferPool,
    errors: Arc<Mutex<Option<String>>>,
    /// Largest token count run by `gemv_multi` (0: never).
    gemv_multi_max: AtomicUsize,
    /// Trellis GEMVs may run the tile kernel ([`GpuContext::set_trellis_tile`]).
    trellis_tile: AtomicBool,
    /// [`GpuContext::runs`] per key: launchers ask on every dispatch, and a spec costs a
    /// source assembly (the trellis tile kernel generates part of its WGSL).
    runs_cache: Mutex<HashMap<KernelKey, bool>>,
    /// Zeroed u32 counters for kernels whose workgroups count arrivals (every such kernel
    /// leaves them zero), and their length.
    arrivals: Mutex<Option<(usize, wgpu::Buffer)>>,
}

impl GpuContext {
    /// Open the adapter `sel` names. `Ok(None)`: the caller should use the CPU backend
    /// (`cpu`, or `auto` with no hardware GPU). Software adapters only open for `gpu`/`gpu:N`.
    pub fn new(sel: DeviceSelector) -> Result<Option<GpuContext>> {
        let inst = selector::instance();
        let adapters = selector::enumerate(&inst);
        let types: Vec<wgpu::DeviceType> =
            adapters.iter().map(|a| a.get_info().device_type).collect();
        match selector::choose(sel, &types)? {
            None => Ok(None),
            Some(i) => {
                let adapter = adapters
                    .into_iter()
                    .nth(i)
                    .ok_or_else(|| Error::NoAdapter(format!("adapter {i} vanished")))?;
                Self::from_adapter(adapter, i).map(Some)
            }
        }
    }

    /// Open `adapter` (listed at `index`), requesting every wanted feature it has and its
    /// maximum limits.
    pub fn from_adapter(adapter: wgpu::Adapter, index: usize) -> Result<GpuContext> {
        let summary = AdapterSummary::new(index, &adapter);
        let features = adapter.features() & wanted_features();
        let experimental = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: the token only permits requesting EXPERIMENTAL_* features; we request
            // cooperative matrices, used only by the Coop GEMM when `coop_gemm()` holds.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("marlin"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let errors: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let pool = BufferPool::new(device.clone());
        Ok(GpuContext {
            registry: Registry::new(),
            pool,
            device,
            queue,
            summary,
            features: GpuFeatures::from_wgpu(features),
            limits,
            errors,
            gemv_multi_max: AtomicUsize::new(gemv_multi_max_from_env()),
            trellis_tile: AtomicBool::new(trellis_tile_from_env()),
            runs_cache: Mutex::default(),
            arrivals: Mutex::default(),
        })
    }

    /// At least `n` zeroed u32 arrival counters (kernels that count arrivals reset theirs
    /// before they finish, and wgpu orders the dispatches that share the buffer). Grows
    /// into a new buffer when a dispatch needs more.
    pub(crate) fn arrival_counters(&self, n: usize) -> Result<wgpu::Buffer> {
        let mut kept = self.arrivals.lock().map_err(|_| Error::Wgpu {
            context: "arrival counters".into(),
            msg: "lock poisoned".into(),
        })?;
        if let Some((_, b)) = kept.as_ref().filter(|(len, _)| *len >= n) {
            return Ok(b.clone());
        }
        let len = n.next_power_of_two().max(1024);
        // wgpu zero-fills new buffers.
        let b = self.scoped("arrival counters", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("arrivals"),
                size: (len * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })?;
        *kept = Some((len, b.clone()));
        Ok(b)
    }

    /// The variant of `op` this device runs by default for formats without a special one:
    /// subgroup GEMV where available; tensor-core GEMM (f16 products, f32 sums, as cuBLAS
    /// prefill does) where the device has it, else plain (f32) GEMM, since the f16 GEMM
    /// also sums in f16 and is opt-in.
    pub fn default_variant(&self, op: Op) -> Variant {
        match op {
            Op::Gemv if self.features.subgroup => Variant::Subgroup,
            Op::Gemm if self.summary.coop_gemm() && coop_allowed() => Variant::Coop,
            // Op::GemvMulti: plain (its row pairs straddle subgroups).
            _ => Variant::Plain,
        }
    }

    /// The variant of `op` on `format`: the 8-bit-activation GEMV for formats that have
    /// it (`MARLIN_GPU_DP4A=0` turns it off), the f16 tile GEMV for trellis formats
    /// (`MARLIN_GPU_TRELLIS_TILE=0`), else [`GpuContext::default_variant`].
    pub fn matmul_variant(&self, op: Op, format: QuantFormat) -> Variant {
        let dp4a = Variant::Dp4a;
        if matches!(op, Op::Gemv | Op::GemvMulti)
            && dp4a_allowed()
            && self.runs(KernelKey {
                op,
                format,
                variant: dp4a,
            })
        {
            return dp4a;
        }
        let tile = Variant::F16;
        if op == Op::Gemv
            && format.is_trellis()
            && self.trellis_tile.load(Ordering::Relaxed)
            && self.runs(KernelKey {
                op,
                format,
                variant: tile,
            })
        {
            return tile;
        }
        self.default_variant(op)
    }

    /// The matmul op for `n_tokens` tokens: GEMV for one, `gemv_multi` for 2 up to the
    /// threshold ([`GpuContext::gemv_multi_max`]), GEMM above.
    pub fn matmul_op(&self, n_tokens: usize) -> Op {
        matmul_op_for(n_tokens, self.gemv_multi_max())
    }

    /// Largest token count `gemv_multi` runs (default [`GEMV_MULTI_MAX`](crate::registry::GEMV_MULTI_MAX), `MARLIN_GPU_GEMV_MULTI_MAX`).
    pub fn gemv_multi_max(&self) -> usize {
        self.gemv_multi_max.load(Ordering::Relaxed)
    }

    /// Whether trellis GEMVs (and MoE GEMVs) may run the f16 tile kernel (default on,
    /// `MARLIN_GPU_TRELLIS_TILE=0` off); where it is off or missing they run the f32 ones.
    pub fn set_trellis_tile(&self, on: bool) {
        self.trellis_tile.store(on, Ordering::Relaxed);
    }

    /// Set the `gemv_multi` threshold (0 sends every multi-token matmul to the GEMM).
    pub fn set_gemv_multi_max(&self, max: usize) {
        self.gemv_multi_max.store(max, Ordering::Relaxed);
    }

    /// Largest storage binding, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Block until all submitted work is done, then report any uncaptured wgpu error.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Poll(e.to_string()))?;
        self.check_errors("wait")
    }

    /// Turn an uncaptured wgpu error recorded since the last check into `Err`.
    pub fn check_errors(&self, context: &str) -> Result<()> {
        let taken = self.errors.lock().ok().and_then(|mut s| s.take());
        match taken {
            Some(msg) => Err(Error::Wgpu {
                context: context.to_string(),
                msg,
            }),
            None => Ok(()),
        }
    }

    /// Run `f` inside validation + out-of-memory error scopes; errors become `Err`.
    pub(crate) fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let e1 = pollster::block_on(val.pop());
        let e2 = pollster::block_on(oom.pop());
        match e1.or(e2) {
            Some(e) => Err(Error::Wgpu {
                context: context.to_string(),
                msg: e.to_string(),
            }),
            None => Ok(out),
        }
    }

    /// Whether `op` has a kernel for `format` on this device (missing kernels are
    /// reported, never emulated).
    pub fn supports(&self, op: Op, format: QuantFormat) -> bool {
        let variant = self.matmul_variant(op, format);
        self.runs(KernelKey {
            op,
            format,
            variant,
        })
    }

    /// Whether this device can run the kernel `key` (it exists and the device has what its
    /// variant needs).
    pub fn runs(&self, key: KernelKey) -> bool {
        let cached = self
            .runs_cache
            .lock()
            .ok()
            .and_then(|m| m.get(&key).copied());
        if let Some(r) = cached {
            return r;
        }
        let coop_ok = !key.variant.is_coop() || self.summary.coop_gemm();
        let r = coop_ok && spec(key).is_some_and(|s| self.device.features().contains(s.features));
        if let Ok(mut m) = self.runs_cache.lock() {
            m.insert(key, r);
        }
        r
    }

    /// Compile the pipelines for `keys` now (at model load) instead of on first use.
    pub fn prewarm(&self, keys: &[KernelKey]) -> Result<()> {
        for &k in keys {
            self.registry.kernel(self, k)?;
        }
        Ok(())
    }

    /// The buffer pool.
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Number of compiled pipelines (for tests and `bench` output).
    pub fn pipelines_compiled(&self) -> usize {
        self.registry.compiled()
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.summary.name)
            .field("features", &self.features)
            .finish()
    }
}
