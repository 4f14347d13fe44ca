//! `Engine`: one model, its paged KV cache and block allocator, and the generation loop
//! (chunked prefill, then sample-decode until EOS, a stop string or the token limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use marlin_models::forward::{LogitsRequest, SeqInput};
use marlin_models::gpu_forward::GpuSampling;
use marlin_models::kv_cache::KvCache;
use marlin_models::{Device, GpuKvCache, GpuModel, Logits, Model};

use crate::blocks::{BlockAllocator, BlockTable};
use crate::decode::{first_id, Decoded, Picker};
use crate::sampler::{Sampler, SamplingParams};
use crate::{Error, Result};

/// Prompt tokens per forward step during prefill (bounds activation memory; the server's
/// default `--max-batched-tokens` too). 512 rather than 256: larger GEMMs fill the GPU
/// better (H200, Llama-3-8B q4_0: a 512-token prompt 4,191 -> 4,913 tok/s, 2,048 tokens
/// 3,036 -> 3,412).
pub const PREFILL_CHUNK: usize = 512;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` reached, or the context is full.
    Length,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// The result of [`Engine::generate`].
#[derive(Debug, Clone)]
pub struct GenerateOutput {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub prefill_time: Duration,
    pub decode_time: Duration,
    pub finish_reason: FinishReason,
}

impl GenerateOutput {
    /// Prompt tokens per second of prefill.
    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prompt_tokens, self.prefill_time)
    }

    /// Generated tokens per second after the first (which prefill produced).
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.completion_tokens.saturating_sub(1), self.decode_time)
    }
}

pub(crate) fn rate(n: usize, t: Duration) -> f64 {
    if t.is_zero() {
        0.0
    } else {
        n as f64 / t.as_secs_f64()
    }
}

/// A model with its KV cache: runs one sequence at a time.
pub struct Engine {
    model: Arc<Model>,
    kv: KvCache,
    pub(crate) alloc: BlockAllocator,
    /// When set, forward steps run on the GPU (with its own KV cache of the same blocks).
    gpu: Option<(Arc<GpuModel>, GpuKvCache)>,
    overlap: bool,
}

impl Engine {
    /// An engine whose cache holds `max_tokens` tokens (capped at the model's context).
    pub fn new(model: Arc<Model>, max_tokens: usize) -> Self {
        let tokens = max_tokens.clamp(1, model.config.context_length);
        let kv = KvCache::for_tokens(&model.config, tokens);
        let alloc = BlockAllocator::new(kv.num_blocks());
        Self {
            model,
            kv,
            alloc,
            gpu: None,
            overlap: std::env::var("MARLIN_GPU_OVERLAP").map_or(true, |v| v != "0"),
        }
    }

    /// Run forward steps on the GPU with `gpu` (uploaded from this engine's model).
    pub fn with_gpu(mut self, gpu: Arc<GpuModel>) -> Result<Self> {
        let kv = GpuKvCache::new(&gpu, self.alloc.num_blocks())?;
        self.gpu = Some((gpu, kv));
        // Steps run on the GPU from now on: free the host cache.
        self.kv = KvCache::new(&self.model.config, 0);
        Ok(self)
    }

    /// Run forward steps on `device` (`Device::Cpu` keeps the CPU path).
    pub fn with_device(self, device: Device) -> Result<Self> {
        match device {
            Device::Cpu => Ok(self),
            Device::Gpu(g) => self.with_gpu(g),
        }
    }

    /// The GPU model forward steps run on, if any.
    pub fn gpu(&self) -> Option<&Arc<GpuModel>> {
        self.gpu.as_ref().map(|(g, _)| g)
    }

    /// One forward step on the GPU when present, else on the CPU.
    pub(crate) fn forward(&mut self, seq: SeqInput<'_>) -> Result<Logits> {
        Ok(match &self.gpu {
            Some((g, kv)) => g.forward(&[seq], kv)?,
            None => self.model.forward(&[seq], &mut self.kv)?,
        })
    }

    /// One GPU decode step that reads back only the token it picks: the argmax, or a draw
    /// with `sampling`.
    pub(crate) fn forward_pick(
        &mut self,
        seq: SeqInput<'_>,
        sampling: Option<GpuSampling>,
    ) -> Result<u32> {
        let Some((g, kv)) = &self.gpu else {
            return Err(Error::InvalidRequest("GPU decoding without a GPU".into()));
        };
        let ids = match sampling {
            Some(s) => g.forward_sample(&[seq], kv, &[s])?,
            None => g.forward_argmax(&[seq], kv)?,
        };
        first_id(ids)
    }

    /// The GPU KV cache, when steps run on the GPU.
    pub(crate) fn gpu_kv(&self) -> Result<&GpuKvCache> {
        self.gpu
            .as_ref()
            .map(|(_, kv)| kv)
            .ok_or_else(|| Error::InvalidRequest("no GPU KV cache".into()))
    }

    /// Whether GPU decode steps overlap (the next submitted before this one is read).
    pub(crate) fn overlap(&self) -> bool {
        self.overlap
    }

    /// Overlap GPU decode steps (the default; `MARLIN_GPU_OVERLAP=0` turns it off): step
    /// t + 1 is recorded and submitted, fed with step t's token on the GPU, before step t's
    /// token is read back, so the GPU never waits for the host between tokens.
    pub fn with_overlap(mut self, on: bool) -> Self {
        self.overlap = on;
        self
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Tokens the cache can hold.
    pub fn capacity(&self) -> usize {
        self.alloc.num_blocks() * marlin_models::kv_cache::BLOCK_SIZE
    }

    /// Run `tokens` through the model in a fresh sequence and return logits per `want`
    /// (`All`: every position; `Last`: the final one). The sequence is dropped afterwards.
    pub fn prompt_logits(&mut self, tokens: &[u32], want: LogitsRequest) -> Result<Logits> {
        let mut table = BlockTable::new();
        let result = self.prefill(&mut table, tokens, want);
        table.release_all(&mut self.alloc);
        result
    }

    fn prefill(
        &mut self,
        table: &mut BlockTable,
        tokens: &[u32],
        want: LogitsRequest,
    ) -> Result<Logits> {
        if tokens.is_empty() {
            return Err(Error::InvalidRequest("the prompt is empty".into()));
        }
        if tokens.len() > self.capacity() {
            return Err(Error::InvalidRequest(format!(
                "{} tokens do not fit the context of {} tokens",
                tokens.len(),
                self.capacity()
            )));
        }
        table.reserve(&mut self.alloc, tokens.len())?;
        let mut out = Logits {
            vocab: self.model.config.vocab,
            ..Default::default()
        };
        let n_chunks = tokens.len().div_ceil(PREFILL_CHUNK);
        for (i, chunk) in tokens.chunks(PREFILL_CHUNK).enumerate() {
            let logits = match want {
                LogitsRequest::All => LogitsRequest::All,
                _ if i + 1 == n_chunks => want,
                _ => LogitsRequest::None,
            };
            let seq = SeqInput {
                tokens: chunk,
                start_pos: i * PREFILL_CHUNK,
                block_table: table.blocks(),
                logits,
            };
            let step = self.forward(seq)?;
            out.data.extend_from_slice(&step.data);
        }
        out.rows_per_seq = vec![out.data.len() / out.vocab.max(1)];
        Ok(out)
    }

    /// Generate a completion of `prompt`, streaming text pieces to `on_text` as they are
    /// decoded. Stops at an end-of-sequence token, a stop string, or `params.max_tokens`.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &SamplingParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerateOutput> {
        let mut table = BlockTable::new();
        let result = self.generate_in(&mut table, prompt, params, on_text);
        table.release_all(&mut self.alloc);
        result
    }

    fn generate_in(
        &mut self,
        table: &mut BlockTable,
        prompt: &[u32],
        params: &SamplingParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerateOutput> {
        let model = Arc::clone(&self.model);
        let mut sampler = Sampler::new(params);
        let mut d = Decoded::new(&model, self.capacity(), prompt, params, on_text);
        let t0 = Instant::now();
        let mut logits = self.prefill(table, prompt, LogitsRequest::Last)?.data;
        let prefill_time = t0.elapsed();
        let t1 = Instant::now();
        let first = sampler.sample(&mut logits, &d.history);
        // Without penalties on the GPU, pick there and read back only the token id per
        // step: the argmax when greedy, else a draw seeded from (seed, position).
        let on_gpu = self.gpu.is_some()
            && params.repetition_penalty == 1.0
            && params.presence_penalty == 0.0
            && params.frequency_penalty == 0.0;
        let picker = if !on_gpu {
            Picker::Host(&mut sampler)
        } else if params.is_greedy() {
            Picker::Gpu(None)
        } else {
            Picker::Gpu(Some(GpuSampling {
                temperature: params.temperature,
                top_k: u32::try_from(params.top_k).unwrap_or(u32::MAX),
                top_p: params.top_p,
                min_p: params.min_p,
                seed: params.seed.unwrap_or_else(rand::random),
                counter: 0,
            }))
        };
        let finish = self.decode(table, &mut d, first, picker)?;
        if finish == FinishReason::Length {
            d.flush()?;
        }
        let Decoded {
            text, generated, ..
        } = d;
        Ok(GenerateOutput {
            text,
            prompt_tokens: prompt.len(),
            completion_tokens: generated.len(),
            token_ids: generated,
            prefill_time,
            decode_time: t1.elapsed(),
            finish_reason: finish,
        })
    }
}
