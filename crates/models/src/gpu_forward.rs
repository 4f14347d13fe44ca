//! `GpuModel`: a loaded [`Model`]'s weights uploaded once to a wgpu device, its paged GPU KV
//! cache, and the forward pass recorded as one step (one compute pass, one submit) with
//! the same semantics as the CPU [`Model::forward`].

mod attn;
mod block_layer;
mod bufs;
mod ffn;
mod fused;
mod inputs;
mod kv_latent;
mod kv_quant;
mod layer;
mod mla;
mod moe;
mod moe_paths;
mod options;
mod overlap;
pub use moe::MOE_GROUPED_MIN_TOKENS;
pub use overlap::PendingStep;
mod profile;
mod run;
mod sample;
mod step;
mod upload;

/// The GPU backend this module runs on (`DeviceSelector`, `GpuContext`, …).
pub use marlin_gpu;
/// Per-sequence settings of [`GpuModel::forward_sample`].
pub use marlin_gpu::GpuSampling;

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use marlin_core::rope::RopeConfig;
use marlin_core::{QTensor, QuantFormat};
use marlin_gpu::wgpu;
use marlin_gpu::{
    upload_f32, BindCache, CacheDtype, GpuContext, GpuWeight, KernelKey, Op, PooledBuffer,
};

use crate::config::ModelConfig;
use crate::kv_cache::BLOCK_SIZE;
use crate::{Error, Model, Result};
use upload::{upload_linear, upload_proj, upload_weight, GpuLinear, GpuProj, Vectors};

/// Where a model runs.
#[derive(Clone)]
pub enum Device {
    /// The CPU forward pass.
    Cpu,
    /// The GPU forward pass of this uploaded model.
    Gpu(Arc<GpuModel>),
}

impl Device {
    /// Parse a `--device` value (`auto`, `cpu`, `gpu`, `gpu:N`) and open it for `model`:
    /// `Cpu` for `cpu` and for `auto` without a hardware GPU, else `model` uploaded to the
    /// chosen adapter. A bad value or an adapter that fails is an error.
    pub fn open(selector: &str, model: &Model) -> Result<Device> {
        let sel: marlin_gpu::DeviceSelector = selector.parse()?;
        Ok(match GpuModel::open(sel, model) {
            Ok(Some(g)) => Device::Gpu(Arc::new(g)),
            Ok(None) => Device::Cpu,
            // `auto` means the best device that runs this model: one with parts the GPU
            // has no kernels for runs on the CPU (an explicit `gpu` keeps the error).
            Err(Error::Unsupported(why)) if sel == marlin_gpu::DeviceSelector::Auto => {
                tracing::warn!("running on the CPU: {why}");
                Device::Cpu
            }
            Err(e) => return Err(e),
        })
    }

    /// `cpu`, or the adapter's name.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            Device::Gpu(g) => g.ctx().summary.name.clone(),
        }
    }
}

/// One transformer block's weights; norms are float offsets into the vector buffer.
pub(crate) struct GpuLayer {
    pub(crate) attn_norm: usize,
    /// q | k | v.
    pub(crate) qkv: GpuProj,
    pub(crate) q_norm: Option<usize>,
    pub(crate) k_norm: Option<usize>,
    pub(crate) o: GpuLinear,
    pub(crate) post_attn_norm: Option<usize>,
    pub(crate) ffn_norm: usize,
    /// Dense MLP or mixture of experts.
    pub(crate) ffn: ffn::GpuFfn,
    pub(crate) post_ffn_norm: Option<usize>,
    /// MLA attention (then `qkv` is empty and `o` is `o_proj`).
    pub(crate) mla: Option<Box<mla::GpuMla>>,
    /// Norms for decode steps that fold them into the GEMVs (`None`: not fusable).
    pub(crate) fused: Option<fused::FusedNorms>,
}

/// A model's weights on a GPU.
pub struct GpuModel {
    pub(crate) ctx: Arc<GpuContext>,
    pub(crate) config: ModelConfig,
    pub(crate) embed: GpuWeight,
    /// `None` when the LM head is the embedding table (tied embeddings).
    pub(crate) lm_head: Option<GpuWeight>,
    pub(crate) layers: Vec<GpuLayer>,
    /// Every norm weight and bias, back to back.
    pub(crate) vectors: PooledBuffer,
    pub(crate) output_norm: usize,
    /// Decode steps fold norms and residual adds into the GEMVs ([`fused`]).
    pub(crate) fused_decode: bool,
    pub(crate) rope: RopeConfig,
    pub(crate) rope_local: Option<RopeConfig>,
    /// Dispatches of the last step.
    pub(crate) last_dispatches: AtomicU32,
    /// Largest logits buffer, bytes (the device's binding limit unless lowered).
    pub(crate) logits_page_bytes: u64,
    /// Bind groups reused across steps.
    pub(crate) bind_cache: BindCache,
    /// The last step's buffers, reused by the next step of the same size.
    step_bufs: Mutex<Option<bufs::StepBufs>>,
    /// Key ranges longer than this use split-K attention (decode over long contexts).
    pub(crate) attn_split_min_keys: usize,
    /// The same for MLA attention (its decode grid is a few head groups: it splits early).
    pub(crate) mla_split_min_keys: usize,
    /// One-sequence steps of at least this many tokens run MLA attention as GEMMs.
    pub(crate) mla_gemm_min: usize,
    /// Steps of at least this many tokens make MLA queries through the folded `q_b`.
    pub(crate) mla_fold_min: usize,
    /// Whether prompt chunks use the flash-style `attn_prefill` kernel.
    pub(crate) prefill_attn: bool,
    /// Whether prompt steps use `attn_flash` where the device runs it.
    pub(crate) flash_attn: bool,
    /// Tokens from which a step runs its MoE experts grouped by expert.
    pub(crate) moe_grouped_min: usize,
    /// Whether fused decode steps fold MoE norms into the router and gate|up GEMVs.
    pub(crate) moe_fold_norm: bool,
    /// Whether fused decode steps fold RoPE and the KV write into the q|k|v GEMV.
    pub(crate) rope_gemv: bool,
    /// Whether fused decode steps fold SwiGLU into the gate|up GEMV.
    pub(crate) swiglu_gemv: bool,
}

fn same_tensor(a: &QTensor, b: &QTensor) -> bool {
    a.format == b.format && a.shape == b.shape && a.bytes() == b.bytes()
}

impl GpuModel {
    /// Upload every weight of `model` to `ctx`. Formats without GPU kernels, or head sizes
    /// the attention kernel cannot take, are errors.
    pub fn new(ctx: Arc<GpuContext>, model: &Model) -> Result<GpuModel> {
        let cfg = model.config.clone();
        // MLA layers attend with `attn_mla`, which checks its own dims.
        let gqa_dims_bad =
            cfg.head_dim > marlin_gpu::ATTN_MAX_HEAD_DIM || !cfg.head_dim.is_multiple_of(2);
        if cfg.mla.is_none() && gqa_dims_bad {
            return Err(Error::Unsupported(format!(
                "GPU attention needs an even head size ≤ {}, got {}",
                marlin_gpu::ATTN_MAX_HEAD_DIM,
                cfg.head_dim
            )));
        }
        let w = &model.weights;
        let mut vecs = Vectors::default();
        let embed = upload_weight(&ctx, &w.embed, "token_embd")?;
        let lm_head = if same_tensor(&w.embed, &w.lm_head) {
            None
        } else {
            Some(upload_weight(&ctx, &w.lm_head, "output")?)
        };
        let mut layers = Vec::with_capacity(w.layers.len());
        for (i, l) in w.layers.iter().enumerate() {
            let c = ctx.as_ref();
            let name = |s: &str| format!("blk.{i}.{s}");
            layers.push(GpuLayer {
                attn_norm: vecs.push(&l.attn_norm),
                qkv: upload_proj(c, &[&l.q, &l.k, &l.v], &mut vecs, &name("attn_qkv"))?,
                q_norm: vecs.opt(&l.q_norm),
                k_norm: vecs.opt(&l.k_norm),
                o: upload_linear(c, &l.o, &mut vecs, &name("attn_output"))?,
                post_attn_norm: vecs.opt(&l.post_attn_norm),
                ffn_norm: vecs.push(&l.ffn_norm),
                ffn: ffn::GpuFfn::Dense {
                    gu: upload_proj(c, &[&l.gate, &l.up], &mut vecs, &name("ffn_gate_up"))?,
                    down: upload_linear(c, &l.down, &mut vecs, &name("ffn_down"))?,
                },
                post_ffn_norm: vecs.opt(&l.post_ffn_norm),
                mla: None,
                fused: None,
            });
        }
        for (i, b) in w.blocks.iter().enumerate() {
            layers.push(block_layer::block_layer(&ctx, &cfg, b, &mut vecs, i)?);
        }
        let output_norm = vecs.push(&w.output_norm);
        if fused::fuse_enabled() {
            for l in &mut layers {
                l.fused = fused::FusedNorms::for_layer(&ctx, l, &vecs.0, cfg.hidden, cfg.rms_eps)?;
            }
        }
        // All or nothing: a fused layer leaves no normed input for an unfused one.
        let fused_decode = !layers.is_empty() && layers.iter().all(|l| l.fused.is_some());
        let vectors = upload_f32(&ctx, &vecs.0)?;
        let logits_page_bytes = ctx.max_binding();
        let model = GpuModel {
            rope: cfg.rope.clone(),
            rope_local: cfg.rope_local.clone(),
            config: cfg,
            ctx,
            embed,
            lm_head,
            layers,
            vectors,
            output_norm,
            fused_decode,
            last_dispatches: AtomicU32::new(0),
            logits_page_bytes,
            bind_cache: BindCache::new(),
            step_bufs: Mutex::new(None),
            attn_split_min_keys: attn::default_split_min_keys(),
            mla_split_min_keys: attn::default_mla_split_min_keys(),
            mla_gemm_min: attn::default_mla_gemm_min(),
            mla_fold_min: attn::default_mla_fold_min(),
            prefill_attn: attn::prefill_attn_enabled(),
            flash_attn: attn::flash_attn_enabled(),
            moe_grouped_min: moe::default_grouped_min(),
            moe_fold_norm: fused::moe_fold_norm_default(),
            rope_gemv: layer::rope_gemv_default(),
            swiglu_gemv: fused::swiglu_gemv_default(),
        };
        model.prewarm()?;
        Ok(model)
    }

    /// Compile every kernel a step uses now, at load, rather than during the first step.
    fn prewarm(&self) -> Result<()> {
        use marlin_gpu::registry::gemv_wide;
        use marlin_gpu::Variant;
        let ctx = &self.ctx;
        let key = |op, format, variant| KernelKey {
            op,
            format,
            variant,
        };
        let mut keys = vec![key(
            Op::Embed,
            self.embed.format,
            ctx.matmul_variant(Op::Embed, self.embed.format),
        )];
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let weights = self.layers.iter().flat_map(GpuLayer::weights);
        for w in weights.chain([head]) {
            let f = w.format;
            let gemv = ctx.matmul_variant(Op::Gemv, f);
            // The launchers' own choices: the wide GEMV of tall weights, the coop GEMM's
            // 16-, 32- and 128-token tiles, the fused GEMVs of decode steps.
            keys.push(key(Op::Gemv, f, gemv));
            keys.push(key(Op::Gemv, f, gemv_wide(gemv, f, w.rows)));
            let multi = ctx.matmul_variant(Op::GemvMulti, f);
            keys.push(key(Op::GemvMulti, f, multi));
            if multi == Variant::Dp4a {
                keys.push(key(Op::GemvMulti, f, Variant::Dp4aWide));
            }
            let gemm = ctx.matmul_variant(Op::Gemm, f);
            keys.push(key(Op::Gemm, f, gemm));
            if gemm == Variant::Coop {
                keys.push(key(Op::Gemm, f, Variant::CoopT16));
                keys.push(key(Op::Gemm, f, Variant::CoopT32));
                keys.push(key(Op::Gemm, f, Variant::CoopT128));
            }
            // Trellis GEMVs that apply their input side themselves, where the device can.
            let had = key(Op::GemvHadamard, f, Variant::F16);
            if w.trellis.is_some() && ctx.runs(had) {
                keys.push(had);
            }
            if self.fused_decode && w.trellis.is_none() && w.hadamard == 0 {
                for op in [Op::GemvNorm, Op::GemvNormOut, Op::GemvAdd] {
                    keys.push(key(op, f, gemv));
                    keys.push(key(op, f, gemv_wide(gemv, f, w.rows)));
                }
            }
        }
        let single = Op::ALL
            .into_iter()
            .filter(|&op| !op.per_format() && op != Op::AttnFlash);
        keys.extend(single.map(|op| {
            key(
                op,
                QuantFormat::F32,
                ctx.matmul_variant(op, QuantFormat::F32),
            )
        }));
        // The tensor-core prompt attention, where the device runs it.
        let flash = key(Op::AttnFlash, QuantFormat::F32, Variant::Coop);
        if self.flash_attn && ctx.runs(flash) {
            keys.push(flash);
        }
        // The attention of multi-token steps (the gqa kernel when it is switched on).
        let shape = self.attn_shape(2, None, marlin_gpu::CacheDtype::F32);
        let attn = marlin_gpu::attn_paged_variant(&shape);
        keys.push(key(Op::AttnPaged, QuantFormat::F32, attn));
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(*k));
        self.ctx.prewarm(&keys)?;
        Ok(())
    }

    /// Open the adapter `sel` names and upload `model` to it; `Ok(None)` when `sel` means
    /// the CPU (`cpu`, or `auto` without a hardware GPU).
    pub fn open(sel: marlin_gpu::DeviceSelector, model: &Model) -> Result<Option<GpuModel>> {
        match GpuContext::new(sel)? {
            Some(ctx) => Self::new(Arc::new(ctx), model).map(Some),
            None => Ok(None),
        }
    }

    /// Whether one-token steps fold the norms and residual adds into their GEMVs
    /// (`gemv_norm` / `gemv_add`; `MARLIN_GPU_FUSE_NORM=0` turns it off).
    pub fn fused_decode(&self) -> bool {
        self.fused_decode
    }

    /// The device context.
    pub fn ctx(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Buffers (chunks) the embedding table and the LM head occupy; each is one dispatch
    /// per lookup or logits range.
    pub fn table_chunks(&self) -> (usize, usize) {
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        (self.embed.chunks.len(), head.chunks.len())
    }

    /// Matmul dispatches of a one-token step: one per chunk of every projection (fused
    /// q|k|v and gate|up count once when their formats agree) and of the LM head.
    pub fn matmul_dispatches(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .flat_map(GpuLayer::weights)
            .map(|w| w.chunks.len())
            .sum();
        layers + self.table_chunks().1
    }

    /// Bytes of weights on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        let layers: u64 = self
            .layers
            .iter()
            .flat_map(GpuLayer::weights)
            .map(GpuWeight::gpu_bytes)
            .sum();
        layers + self.embed.gpu_bytes() + self.lm_head.as_ref().map_or(0, GpuWeight::gpu_bytes)
    }
}

impl GpuLayer {
    /// Every weight matrix of the layer.
    fn weights(&self) -> impl Iterator<Item = &GpuWeight> {
        let o = [&self.o.w];
        let mla = self.mla.iter().flat_map(|m| m.weights());
        self.qkv
            .parts
            .iter()
            .chain(o)
            .chain(mla)
            .chain(self.ffn.weights())
    }
}

/// Paged K/V storage of every layer on the GPU (f16, the CPU cache's geometry:
/// [`BLOCK_SIZE`]-token blocks of `[slot][kv_head][head_dim]`).
pub struct GpuKvCache {
    pub(crate) k: Vec<wgpu::Buffer>,
    pub(crate) v: Vec<wgpu::Buffer>,
    /// MLA models: per layer the f16 latent rows `[block][slot][kv_lora_rank + rope_dim]`
    /// (and no K/V).
    pub(crate) latent: Vec<wgpu::Buffer>,
    pub(crate) num_blocks: usize,
    pub(crate) dtype: CacheDtype,
}

impl GpuKvCache {
    /// Zeroed f16 storage (as the CPU cache) for `num_blocks` blocks per layer of `model`.
    pub fn new(model: &GpuModel, num_blocks: usize) -> Result<GpuKvCache> {
        Self::with_dtype(model, num_blocks, CacheDtype::F16)
    }

    /// Zeroed storage of element type `dtype` for `num_blocks` blocks per layer.
    pub fn with_dtype(
        model: &GpuModel,
        num_blocks: usize,
        dtype: CacheDtype,
    ) -> Result<GpuKvCache> {
        let cfg = &model.config;
        if let Some(m) = &cfg.mla {
            return Self::latent(model, num_blocks, dtype, m.latent_width());
        }
        let words = num_blocks
            .checked_mul(BLOCK_SIZE * dtype.slot_words(cfg.n_kv_heads, cfg.head_dim))
            .ok_or_else(|| Error::Config(format!("{num_blocks} KV blocks overflow")))?;
        let bytes = (words.max(1) as u64) * 4;
        let limit = model.ctx.max_binding();
        if bytes > limit {
            return Err(Error::Unsupported(format!(
                "a GPU KV layer of {num_blocks} blocks takes {bytes} bytes, over the binding limit {limit}"
            )));
        }
        let make = |label: &str| {
            model.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.div_ceil(16) * 16,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let k = (0..cfg.n_layers).map(|_| make("marlin-kv-k")).collect();
        let v = (0..cfg.n_layers).map(|_| make("marlin-kv-v")).collect();
        Ok(GpuKvCache {
            k,
            v,
            latent: Vec::new(),
            num_blocks,
            dtype,
        })
    }

    /// Number of blocks per layer.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Copies block `src` over block `dst` in every layer's K and V (copy-on-write of a
    /// shared block), submitted on `model`'s queue before any later step.
    pub fn copy_block(&self, model: &GpuModel, src: u32, dst: u32) -> Result<()> {
        let n = self.num_blocks;
        if src as usize >= n || dst as usize >= n {
            return Err(Error::Config(format!(
                "KV block copy {src} -> {dst} outside {n} blocks"
            )));
        }
        let c = &model.config;
        let bytes = (BLOCK_SIZE * self.dtype.slot_words(c.n_kv_heads, c.head_dim)) as u64 * 4;
        let mut enc = model
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("marlin-kv-copy"),
            });
        // wgpu refuses a copy within one buffer: go through a staging buffer.
        let tmp = model.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("marlin-kv-copy-tmp"),
            size: bytes,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        for buf in self.k.iter().chain(&self.v) {
            enc.copy_buffer_to_buffer(buf, src as u64 * bytes, &tmp, 0, bytes);
            enc.copy_buffer_to_buffer(&tmp, 0, buf, dst as u64 * bytes, bytes);
        }
        self.copy_latent_block(model, &mut enc, src, dst);
        model.ctx.queue.submit([enc.finish()]);
        Ok(())
    }
}
