//! `Engine`: one model, its paged KV cache and block allocator, and the generation loop
//! (chunked prefill, then sample-decode until EOS, a stop string or the token limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use marlin_models::forward::{LogitsRequest, SeqInput};
use marlin_models::gpu_forward::GpuSampling;
use marlin_models::kv_cache::KvCache;
use marlin_models::tokenizer::StreamDecoder;
use marlin_models::{Device, GpuKvCache, GpuModel, Logits, Model};

use crate::blocks::{BlockAllocator, BlockTable};
use crate::sampler::{Sampler, SamplingParams, StopChecker};
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
    alloc: BlockAllocator,
    /// When set, forward steps run on the GPU (with its own KV cache of the same blocks).
    gpu: Option<(Arc<GpuModel>, GpuKvCache)>,
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
    fn forward(&mut self, seq: SeqInput<'_>) -> Result<Logits> {
        Ok(match &self.gpu {
            Some((g, kv)) => g.forward(&[seq], kv)?,
            None => self.model.forward(&[seq], &mut self.kv)?,
        })
    }

    /// One decode step that reads back only the argmax token (GPU greedy decoding).
    fn forward_argmax(&mut self, seq: SeqInput<'_>) -> Result<u32> {
        match &self.gpu {
            Some((g, kv)) => {
                let ids = g.forward_argmax(&[seq], kv)?;
                ids.first()
                    .copied()
                    .ok_or_else(|| Error::InvalidRequest("decode step produced no token".into()))
            }
            None => {
                let logits = self.model.forward(&[seq], &mut self.kv)?;
                Ok(crate::sampler::argmax(&logits.data))
            }
        }
    }

    /// One GPU decode step that reads back only the token drawn with `sampling`.
    fn forward_sample(&mut self, seq: SeqInput<'_>, sampling: GpuSampling) -> Result<u32> {
        let Some((g, kv)) = &self.gpu else {
            return Err(Error::InvalidRequest("GPU sampling without a GPU".into()));
        };
        let ids = g.forward_sample(&[seq], kv, &[sampling])?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::InvalidRequest("decode step produced no token".into()))
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
        let eos = model.tokenizer.eos_ids();
        let mut sampler = Sampler::new(params);
        let mut stop = StopChecker::new(params.stop.clone());
        let mut decoder = StreamDecoder::new(&model.tokenizer);
        let mut history: Vec<u32> = prompt.to_vec();
        let mut generated = Vec::new();
        let mut text = String::new();
        let mut emit = |piece: &str, text: &mut String| {
            if !piece.is_empty() {
                on_text(piece);
                text.push_str(piece);
            }
        };

        let t0 = Instant::now();
        let mut logits = self.prefill(table, prompt, LogitsRequest::Last)?.data;
        let prefill_time = t0.elapsed();
        let t1 = Instant::now();
        let mut finish = FinishReason::Length;
        // Without penalties on the GPU, pick there and read back only the token id per
        // step: the argmax when greedy, else a draw seeded from (seed, position).
        let on_gpu = self.gpu.is_some()
            && params.repetition_penalty == 1.0
            && params.presence_penalty == 0.0
            && params.frequency_penalty == 0.0;
        let argmax_only = on_gpu && params.is_greedy();
        let gpu_seed: u64 = params.seed.unwrap_or_else(rand::random);
        let mut next: Option<u32> = None;
        while generated.len() < params.max_tokens {
            let tok = match next.take() {
                Some(t) => t,
                None => sampler.sample(&mut logits, &history),
            };
            history.push(tok);
            generated.push(tok);
            if eos.contains(&tok) && !params.ignore_eos {
                emit(&stop.flush(), &mut text);
                finish = FinishReason::Stop;
                break;
            }
            let piece = decoder.push(tok)?;
            let (out, hit) = stop.push(&piece);
            emit(&out, &mut text);
            if hit {
                finish = FinishReason::Stop;
                break;
            }
            let pos = history.len() - 1;
            if generated.len() == params.max_tokens || pos + 1 > self.capacity() {
                break;
            }
            table.reserve(&mut self.alloc, pos + 1)?;
            let seq = SeqInput {
                tokens: &history[pos..],
                start_pos: pos,
                block_table: table.blocks(),
                logits: LogitsRequest::Last,
            };
            if argmax_only {
                next = Some(self.forward_argmax(seq)?);
            } else if on_gpu {
                let sampling = GpuSampling {
                    temperature: params.temperature,
                    top_k: u32::try_from(params.top_k).unwrap_or(u32::MAX),
                    top_p: params.top_p,
                    min_p: params.min_p,
                    seed: gpu_seed,
                    counter: pos as u32,
                };
                next = Some(self.forward_sample(seq, sampling)?);
            } else {
                logits = self.forward(seq)?.data;
            }
        }
        if finish == FinishReason::Length {
            let tail = decoder.finish()?;
            let (out, _) = stop.push(&tail);
            emit(&out, &mut text);
            emit(&stop.flush(), &mut text);
        }
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
