//! Shared test helpers: the lavapipe context, seeded weights, the NMSE table, guard regions.
#![allow(dead_code)]

use std::sync::OnceLock;

use marlin_core::{formats, QTensor, QuantFormat};
use marlin_gpu::registry::DP4A_FORMATS;
use marlin_gpu::wgpu;
use marlin_gpu::{list_adapters, read_f32, upload_f32, DeviceSelector, GpuContext, Op, Variant};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Floats of sentinel space before and after every output.
pub const GUARD: usize = 17;
/// Bit pattern written into guard space (a NaN no kernel produces).
pub const SENTINEL: u32 = 0x7FBA_DB0B;

/// NMSE thresholds, the one table: quantized ops are compared with the f64 reference on
/// dequantized weights, so in f32 only accumulation order separates them (measured on
/// lavapipe: 1e-15..1e-12); the f16 variant rounds weights and activations to f16
/// (≈ 2^-11 relative each).
pub fn nmse_threshold(op: Op, format: QuantFormat, variant: Variant) -> f64 {
    use QuantFormat as F;
    match (op, format, variant) {
        (_, _, Variant::F16 | Variant::Coop | Variant::CoopT32 | Variant::CoopT16) => 2e-6,
        // Activations quantized to 8 bits per 32 (max |x| / 127 steps): measured on
        // lavapipe 1e-5..5e-5 against the f64 reference.
        (_, _, Variant::Dp4a | Variant::Dp4aWide) => 1e-4,
        // The latent cache rounds to f16: a value whose f32 bits differ from the CPU's (its
        // rsqrt, RoPE products) may round to the neighbouring f16 (2^-11 relative).
        (Op::MlaLatent, _, _) => 1e-6,
        (_, F::F32 | F::F16 | F::BF16, _) => 1e-10,
        _ => 1e-10,
    }
}

/// The software Vulkan context (lavapipe), shared by all tests of one binary.
/// No adapter at all fails loudly unless `MARLIN_SKIP_GPU=1`.
pub fn ctx() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(open_test_context).as_ref()
}

/// A context of its own (own buffer pool), for tests whose assertions depend on which pooled
/// buffers they get: tests of one binary run in parallel and share `ctx()`'s pool.
pub fn private_ctx() -> Option<GpuContext> {
    ctx()?;
    open_test_context()
}

fn open_test_context() -> Option<GpuContext> {
    let adapters = list_adapters();
    let pick = adapters
        .iter()
        .find(|a| a.software)
        .or(adapters.first())
        .map(|a| a.index);
    match pick {
        Some(i) => Some(
            GpuContext::new(DeviceSelector::GpuIndex(i))
                .expect("opening the test adapter")
                .expect("gpu:N always opens an adapter"),
        ),
        None if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("MARLIN_SKIP_GPU=1: no GPU adapter, GPU tests skipped");
            None
        }
        None => panic!(
            "no wgpu adapter found: install lavapipe (apt-get install mesa-vulkan-drivers \
                 libvulkan1) or set MARLIN_SKIP_GPU=1"
        ),
    }
}

/// The expert GEMV formats the MoE parity tests cover (f32, f16, the Dp4a formats, and
/// plain and K-quant decoders that keep f32 activations), each at every column count of
/// `cols`.
pub fn moe_cases(cols: [usize; 2]) -> impl Iterator<Item = (usize, QuantFormat)> {
    cols.into_iter().flat_map(|c| {
        [
            QuantFormat::F32,
            QuantFormat::F16,
            QuantFormat::Q8_0,
            QuantFormat::Q4_0,
            QuantFormat::Q4_K,
            QuantFormat::Q4_1,
            QuantFormat::Q5_K,
        ]
        .map(|f| (c, f))
    })
}

/// The variant the MoE expert GEMVs (`moe_gemv`, `_norm`, `_silu`) run for `format` at
/// `cols` columns, as their launcher picks it: 8-bit activations for the Dp4a formats'
/// rows longer than the narrow GEMV's, else f32 activations (for the NMSE threshold).
pub fn moe_gemv_variant(format: QuantFormat, cols: usize) -> Variant {
    match cols > marlin_gpu::MOE_NARROW_MAX_COLS && DP4A_FORMATS.contains(&format) {
        true => Variant::Dp4aWide,
        false => Variant::Plain,
    }
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform values in [-1, 1).
pub fn random_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// A `[rows, cols]` weight in `format`, from seeded values with mildly varying row scales.
pub fn random_weight(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> QTensor {
    let mut r = rng(seed);
    let mut vals = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let scale = r.random_range(0.25f32..2.0);
        vals.extend(random_vec(&mut r, cols).into_iter().map(|v| v * scale));
    }
    formats::quantize_tensor(format, &[rows, cols], &vals).expect("quantize")
}

/// A random `[n, k]` trellis weight: uniform stream words, side scales ±[0.5, 1.5).
pub fn random_trellis(format: QuantFormat, n: usize, k: usize, seed: u64) -> QTensor {
    let QuantFormat::Trellis(f) = format else {
        panic!("{format} is not trellis");
    };
    let lay = formats::trellis::layout(f, n, k).expect("layout");
    let mut r = rng(seed);
    let mut bytes: Vec<u8> = (0..lay.suh_at / 4)
        .flat_map(|_| r.random::<u32>().to_le_bytes())
        .collect();
    for _ in 0..k + n {
        let v = r.random_range(0.5f32..1.5) * if r.random::<bool>() { 1.0 } else { -1.0 };
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let data = marlin_core::TensorData::Owned(std::sync::Arc::new(bytes));
    QTensor::new(format, vec![n, k], data).expect("tensor")
}

/// Normalized mean squared error of `got` against `want`.
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (f64::from(g) - f64::from(w)).powi(2);
        den += f64::from(w).powi(2);
    }
    num / den.max(1e-30)
}

/// A host vector of `len` floats surrounded by `GUARD` sentinels on each side.
pub fn guarded(len: usize) -> Vec<f32> {
    vec![f32::from_bits(SENTINEL); len + 2 * GUARD]
}

/// Panics if any of `idx` positions of `v` lost its sentinel.
pub fn assert_sentinels(v: &[f32], idx: impl IntoIterator<Item = usize>, what: &str) {
    for i in idx {
        assert_eq!(
            v[i].to_bits(),
            SENTINEL,
            "{what}: guard float {i} overwritten ({})",
            v[i]
        );
    }
}

/// A guarded output buffer of `len` floats (sentinels around it; see [`read_guarded`]).
pub fn out_buf(ctx: &GpuContext, len: usize) -> marlin_gpu::PooledBuffer {
    upload_f32(ctx, &guarded(len)).expect("upload out")
}

/// The `len` floats of a guarded buffer, after checking its guards.
pub fn read_guarded(ctx: &GpuContext, b: &wgpu::Buffer, len: usize, what: &str) -> Vec<f32> {
    let all = read_f32(ctx, b, 0, len + 2 * GUARD).expect("read");
    assert_sentinels(&all, (0..GUARD).chain(GUARD + len..all.len()), what);
    all[GUARD..GUARD + len].to_vec()
}

/// `v` uploaded as u32 words.
pub fn u32_buf(ctx: &GpuContext, v: &[u32]) -> marlin_gpu::PooledBuffer {
    upload_f32(ctx, bytemuck::cast_slice(v)).expect("upload u32")
}

/// K and V rows and their cache slots, uploaded for a `kv_write`; keep them until the write
/// is submitted.
pub struct KvRows {
    pub k: marlin_gpu::PooledBuffer,
    pub v: marlin_gpu::PooledBuffer,
    pub slots: marlin_gpu::PooledBuffer,
    /// Floats per K (and V) row.
    pub row: usize,
}

impl KvRows {
    pub fn upload(ctx: &GpuContext, k: &[f32], v: &[f32], slots: &[u32], row: usize) -> Self {
        KvRows {
            k: upload_f32(ctx, k).expect("k"),
            v: upload_f32(ctx, v).expect("v"),
            slots: u32_buf(ctx, slots),
            row,
        }
    }

    /// The write of these rows into `k_cache` / `v_cache`.
    pub fn io<'a>(
        &'a self,
        k_cache: &'a wgpu::Buffer,
        v_cache: &'a wgpu::Buffer,
    ) -> marlin_gpu::KvWriteIo<'a> {
        marlin_gpu::KvWriteIo {
            k: marlin_gpu::Span::whole(&self.k),
            v: marlin_gpu::Span::whole(&self.v),
            src_stride: self.row,
            slots: marlin_gpu::Span::whole(&self.slots),
            k_cache,
            v_cache,
        }
    }
}
