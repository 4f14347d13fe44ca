//! The decode loop of [`Engine::generate`]: each new token is checked against EOS, stop
//! strings and the limits, and streamed; the next step runs on the CPU, on the GPU one step
//! at a time, or on the GPU overlapped (step t + 1 submitted, fed with step t's token on
//! the GPU, before step t's token is read back).

use std::sync::Arc;

use marlin_models::forward::{LogitsRequest, SeqInput};
use marlin_models::gpu_forward::GpuSampling;
use marlin_models::tokenizer::StreamDecoder;
use marlin_models::Model;

use crate::blocks::{BlockAllocator, BlockTable};
use crate::generate::{Engine, FinishReason};
use crate::sampler::{SamplingParams, StopChecker};
use crate::Result;

/// The generated tokens and text of one sequence, and its stop conditions.
pub(crate) struct Decoded<'a> {
    pub(crate) history: Vec<u32>,
    pub(crate) generated: Vec<u32>,
    pub(crate) text: String,
    eos: Vec<u32>,
    ignore_eos: bool,
    max_tokens: usize,
    capacity: usize,
    stop: StopChecker,
    decoder: StreamDecoder<'a>,
    on_text: &'a mut dyn FnMut(&str),
}

impl<'a> Decoded<'a> {
    /// `prompt`'s continuation by `model`, for a cache of `capacity` tokens.
    pub(crate) fn new(
        model: &'a Model,
        capacity: usize,
        prompt: &[u32],
        params: &SamplingParams,
        on_text: &'a mut dyn FnMut(&str),
    ) -> Self {
        let tok = &model.tokenizer;
        Self {
            history: prompt.to_vec(),
            generated: Vec::new(),
            text: String::new(),
            eos: tok.eos_ids().to_vec(),
            ignore_eos: params.ignore_eos,
            max_tokens: params.max_tokens,
            capacity,
            stop: StopChecker::new(params.stop.clone()),
            decoder: StreamDecoder::new(tok),
            on_text,
        }
    }

    fn emit(&mut self, piece: &str) {
        if !piece.is_empty() {
            (self.on_text)(piece);
            self.text.push_str(piece);
        }
    }

    /// Take `tok` as the next token: `Some` when generation ends with it.
    pub(crate) fn accept(&mut self, tok: u32) -> Result<Option<FinishReason>> {
        self.history.push(tok);
        self.generated.push(tok);
        if self.eos.contains(&tok) && !self.ignore_eos {
            let rest = self.stop.flush();
            self.emit(&rest);
            return Ok(Some(FinishReason::Stop));
        }
        let piece = self.decoder.push(tok)?;
        let (out, hit) = self.stop.push(&piece);
        self.emit(&out);
        if hit {
            return Ok(Some(FinishReason::Stop));
        }
        Ok((!self.can_step(0)).then_some(FinishReason::Length))
    }

    /// Whether the step after `ahead` more accepted tokens is still wanted: the token it
    /// makes is under the limit and its position fits the cache.
    fn can_step(&self, ahead: usize) -> bool {
        self.generated.len() + ahead < self.max_tokens
            && self.history.len() + ahead <= self.capacity
    }

    /// Stream what the decoder and the stop checker still hold (a `Length` finish).
    pub(crate) fn flush(&mut self) -> Result<()> {
        let tail = self.decoder.finish()?;
        let (out, _) = self.stop.push(&tail);
        self.emit(&out);
        let rest = self.stop.flush();
        self.emit(&rest);
        Ok(())
    }
}

/// How the decode steps pick their tokens.
pub(crate) enum Picker<'p> {
    /// Logits come back to the host sampler (CPU, or penalties that need the history).
    Host(&'p mut crate::sampler::Sampler),
    /// The GPU picks: the argmax (`None`) or a draw seeded from (seed, position).
    Gpu(Option<GpuSampling>),
}

fn gpu_sampling(s: &Option<GpuSampling>, pos: usize) -> Option<GpuSampling> {
    s.map(|s| GpuSampling {
        counter: pos as u32,
        ..s
    })
}

impl Engine {
    /// Decode after `first` (the token the prompt's logits gave) until `d` finishes.
    pub(crate) fn decode(
        &mut self,
        table: &mut BlockTable,
        d: &mut Decoded<'_>,
        first: u32,
        mut picker: Picker<'_>,
    ) -> Result<FinishReason> {
        let mut tok = first;
        if d.max_tokens == 0 {
            return Ok(FinishReason::Length);
        }
        if let (Picker::Gpu(s), true) = (&picker, self.overlap()) {
            let s = *s;
            return self.decode_overlapped(table, d, first, &s);
        }
        loop {
            if let Some(f) = d.accept(tok)? {
                return Ok(f);
            }
            let pos = d.history.len() - 1;
            let seq = step_input(&mut self.alloc, table, &d.history[pos..], pos)?;
            tok = match &mut picker {
                Picker::Gpu(s) => self.forward_pick(seq, gpu_sampling(s, pos))?,
                Picker::Host(sampler) => {
                    let mut logits = self.forward(seq)?.data;
                    sampler.sample(&mut logits, &d.history)
                }
            };
        }
    }

    /// [`Engine::decode`] with step t + 1 in flight while step t's token is read: the GPU
    /// runs back to back. A step past an EOS or stop string is wasted (one step's time).
    fn decode_overlapped(
        &mut self,
        table: &mut BlockTable,
        d: &mut Decoded<'_>,
        first: u32,
        sampling: &Option<GpuSampling>,
    ) -> Result<FinishReason> {
        let Some(g) = self.gpu().map(Arc::clone) else {
            return Err(crate::Error::InvalidRequest(
                "overlapped decode without a GPU".into(),
            ));
        };
        if let Some(f) = d.accept(first)? {
            return Ok(f);
        }
        let pos = d.history.len() - 1;
        let seq = step_input(&mut self.alloc, table, &d.history[pos..], pos)?;
        let kv = self.gpu_kv()?;
        let mut pending =
            g.submit_pick(&[seq], kv, gpu_sampling(sampling, pos).as_slice_opt(), None)?;
        loop {
            // `pending` makes the token at `next`; the step after it takes that token.
            let next = d.history.len();
            let ahead = if d.can_step(1) {
                // A placeholder token: the GPU copies in `pending`'s.
                let seq = step_input(&mut self.alloc, table, &d.history[next - 1..], next)?;
                let s = gpu_sampling(sampling, next);
                Some(g.submit_pick(&[seq], self.gpu_kv()?, s.as_slice_opt(), Some(&pending))?)
            } else {
                None
            };
            let tok = first_id(g.finish_pick(pending)?)?;
            let done = d.accept(tok)?;
            match (done, ahead) {
                (None, Some(a)) => pending = a,
                (done, ahead) => {
                    if let Some(a) = ahead {
                        g.finish_pick(a)?;
                    }
                    return Ok(done.unwrap_or(FinishReason::Length));
                }
            }
        }
    }
}

/// Reserve the blocks through position `pos` and the one-token decode input there.
fn step_input<'a>(
    alloc: &mut BlockAllocator,
    table: &'a mut BlockTable,
    tokens: &'a [u32],
    pos: usize,
) -> Result<SeqInput<'a>> {
    table.reserve(alloc, pos + 1)?;
    Ok(SeqInput {
        tokens,
        start_pos: pos,
        block_table: table.blocks(),
        logits: LogitsRequest::Last,
    })
}

/// The single token id a one-sequence decode step picked.
pub(crate) fn first_id(ids: Vec<u32>) -> Result<u32> {
    ids.first()
        .copied()
        .ok_or_else(|| crate::Error::InvalidRequest("decode step produced no token".into()))
}

/// `Option<T>` as an optional one-element slice.
trait AsSliceOpt<T> {
    fn as_slice_opt(&self) -> Option<&[T]>;
}

impl<T> AsSliceOpt<T> for Option<T> {
    fn as_slice_opt(&self) -> Option<&[T]> {
        self.as_ref().map(std::slice::from_ref)
    }
}
