//! metal-marlin GPU backend over wgpu (Metal, Vulkan, DX12): adapter selection, a buffer
//! pool, a registry of WGSL kernels compiled on demand, quantized GEMV/GEMM reading GGML
//! blocks directly, the other ops of a transformer step (embedding lookup per format,
//! RMSNorm, RoPE, gated activations, residual add, paged KV writes, paged attention,
//! argmax), and a step encoder that records many dispatches into one submit.
//!
//! Typical use:
//! ```no_run
//! # fn run(tensor: marlin_core::QTensor) -> marlin_gpu::Result<()> {
//! use marlin_gpu::{DeviceSelector, GpuContext, GpuWeight, MatmulIo, StepEncoder};
//! let Some(ctx) = GpuContext::new(DeviceSelector::Auto)? else { return Ok(()) }; // CPU fallback
//! let w = GpuWeight::upload(&ctx, &tensor)?;
//! let x = marlin_gpu::upload_f32(&ctx, &vec![0.5; w.cols])?;
//! let y = marlin_gpu::storage_f32(&ctx, w.rows)?;
//! let mut step = StepEncoder::new(&ctx, "decode");
//! marlin_gpu::record_matmul(&mut step, &w, &MatmulIo::new(&x, &y, 1))?;
//! step.submit()?;
//! let out = marlin_gpu::read_f32(&ctx, &y, 0, w.rows)?;
//! # Ok(()) }
//! # fn main() {}
//! ```

pub mod bench;
pub mod bind_cache;
pub mod context;
pub mod encoder;
pub mod error;
pub mod format_parts;
pub mod layout;
pub mod layout_marlin;
pub mod op;
pub mod ops;
pub mod pipelines;
pub mod pool;
pub mod readback;
pub mod registry;
pub mod selector;
pub mod shaders;
pub mod upload;
pub mod weight;
pub mod weight_experts;
pub mod weight_trellis;

pub use bench::{
    bench_gemv, bench_gemv_with, copy_bandwidth, BenchOpts, CopyBench, GemvBench, Timer,
};
pub use bind_cache::BindCache;
pub use context::GpuContext;
pub use encoder::StepEncoder;
pub use error::{Error, Result};
pub use layout::WeightLayout;
pub use op::{kernel_name, Op, MATMUL_FORMATS};
pub use ops::act_q8::{act_q8_bytes, record_act_q8};
pub use ops::argmax::record_argmax;
pub use ops::attention::{attn_paged_variant, record_attention, AttnShape, ATTN_MAX_HEAD_DIM};
pub use ops::attention_flash::{attn_flash_supported, record_attention_flash, ATTN_FLASH_BLOCK};
pub use ops::attention_prefill::{
    attn_prefill_blocks, query_blocks, record_attention_prefill, ATTN_PREFILL_BLOCK,
};
pub use ops::attention_split::{
    attn_partial_len, attn_splits, record_attention_split, ATTN_MAX_SPLITS, ATTN_SPLIT_KEYS,
    ATTN_SPLIT_MIN_KEYS,
};
pub use ops::attn_mla::{
    mla_partial_len, mla_splits, record_attn_mla, record_mla_latent, MlaAttnIo, MlaLatentIo,
    MlaShape, MLA_HEADS_PER_GROUP, MLA_MAX_RANK, MLA_MAX_WIDTH, MLA_SPLIT_KEYS, MLA_SPLIT_MIN_KEYS,
};
pub use ops::attn_mla_gemm::{
    mla_gemm_fits, record_attn_mla_gemm, record_attn_mla_gemm_blocks, MLA_GEMM_KEY_ALIGN,
    MLA_GEMM_MAX_SCORE_BYTES,
};
pub use ops::elementwise::{record_add, record_gate_mul, GateAct};
pub use ops::embed::{record_embed, record_gather_rows};
pub use ops::gemm_splitk::{record_gemm_splitk_reduce, SplitkReduceIo};
pub use ops::gemv_fused::{norm_with_eps, record_gemv_fused, GemvFuse, RopeKvOut};
pub use ops::hadamard::{record_hadamard_scale, ScaleSide, HADAMARD_MAX_BLOCK};
pub use ops::kv::{record_kv_write, record_kv_write_heads, CacheDtype, KvWriteIo};
pub use ops::matmul::{matmul, record_matmul, record_matmul_op, record_matmul_variant, MatmulIo};
pub use ops::moe::{
    moe_combine_folds, record_moe_combine, record_moe_route, MoeCombineOut, MoeRouting,
    MOE_MAX_EXPERTS, MOE_MAX_GROUPS, MOE_MAX_TOP_K,
};
pub use ops::moe_experts::{
    moe_experts_grouped_runs, moe_experts_swiglu_runs, record_moe_experts,
    record_moe_experts_grouped, record_moe_experts_swiglu, MoeExpertsIo,
};
pub use ops::moe_gemm::{
    moe_gemm_chunk, moe_gemm_runs, moe_gemm_variant, moe_gemm_variant_rows, record_moe_gemm,
    MOE_GEMM_MIN_AVG_SLOTS,
};
pub use ops::moe_gemv::{
    record_moe_gemv, record_moe_gemv_fused, MoeFuse, MoeGemvIo, MOE_NARROW_MAX_COLS,
};
pub use ops::moe_grouped::{
    moe_grouped_runs, moe_grouped_variant, record_moe_grouped, record_moe_grouped_rows,
    record_moe_sort, record_moe_sort_mats, MoeGroups,
};
pub use ops::moe_hadamard_scale::{
    record_moe_hadamard_combine, record_moe_hadamard_scale, record_moe_hadamard_swiglu,
    MoeCombineIo, MoeScaleIo, MoeSwigluIo, SlotSide,
};
pub use ops::norm::{record_add_rms_norm, record_rms_norm, record_rms_norm_grouped};
pub use ops::rope::record_rope;
pub use ops::rope_kv::{record_rope_kv, RopeKvIo, RopeKvShape};
pub use ops::sample::{
    record_sample, sample_scratch_words, upload_sampling, GpuSampling, SampleIo, SAMPLE_CANDIDATES,
    SAMPLE_CHUNK, SAMPLE_MAX_VOCAB,
};
pub use ops::Span;
pub use pool::{BufferPool, PooledBuffer};
pub use readback::{stage_read, PendingRead, StagedRead};
pub use registry::{all_specs, spec, KernelKey, KernelSpec, Variant};
pub use selector::{list_adapters, AdapterSummary, DeviceSelector, GpuFeatures};
pub use upload::{read_bytes, read_f32, storage_f32, upload_f32, zeroed_f32};
pub use weight::{GpuWeight, WeightChunk};
pub use weight_experts::{ExpertSides, GpuExperts};
pub use weight_trellis::TrellisSides;
/// The wgpu version this crate is built on (buffers cross the API).
pub use wgpu;
