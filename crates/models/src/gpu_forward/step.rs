//! One forward step of a [`GpuModel`]: host-built step inputs (token ids, KV slots,
//! attention metadata, RoPE cos/sin rows) uploaded once, then every op of every layer
//! recorded into a single [`StepEncoder`] and submitted once; only the requested logits
//! rows (or their argmax ids) are read back.

use std::ops::Range;
use std::sync::atomic::Ordering;

use marlin_core::rope::RopeConfig;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    read_bytes, read_f32, record_add, record_argmax, record_attention, record_embed,
    record_gate_mul, record_kv_write, record_matmul, record_rms_norm, record_rope, storage_f32,
    upload_f32, AttnShape, GateAct, MatmulIo, PooledBuffer, Span, StepEncoder,
};

use super::{GpuKvCache, GpuLinear, GpuModel};
use crate::config::Activation;
use crate::forward::{Logits, LogitsRequest, SeqInput};
use crate::kv_cache::BLOCK_SIZE;
use crate::{Error, Result};

/// The host side of a step: u32 words `[ids | slots | (pos, table offset) per token |
/// block tables]`, RoPE rows, and which token rows each sequence wants logits for.
struct StepInputs {
    n: usize,
    words: Vec<u32>,
    slots_off: usize,
    meta_off: usize,
    cs: Vec<f32>,
    cs_local_off: usize,
    picks: Vec<Range<usize>>,
}

/// `cos ‖ sin` of every position's half angles, as the CPU table computes them (f64).
fn push_cs(cfg: &RopeConfig, positions: &[usize], out: &mut Vec<f32>) {
    let f = cfg.inv_freqs();
    for &p in positions {
        let angles = f.iter().map(|&fr| p as f64 * f64::from(fr));
        out.extend(angles.clone().map(|a| a.cos() as f32));
        out.extend(angles.map(|a| a.sin() as f32));
    }
}

/// Activations of a step, alive until it is submitted.
struct Scratch {
    h: PooledBuffer,
    xn: PooledBuffer,
    q: PooledBuffer,
    k: PooledBuffer,
    v: PooledBuffer,
    /// Pre-norm q/k when the model norms heads (Qwen3, Gemma 3).
    qk_raw: Option<(PooledBuffer, PooledBuffer)>,
    att: PooledBuffer,
    tmp: PooledBuffer,
    tmp2: PooledBuffer,
    gate: PooledBuffer,
    up: PooledBuffer,
}

impl GpuModel {
    fn prepare(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<StepInputs> {
        let cfg = &self.config;
        let n: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        if kv.k.len() != cfg.n_layers {
            return Err(Error::Config(
                "GPU KV cache belongs to another model".into(),
            ));
        }
        let slots_off = n.div_ceil(4) * 4;
        let meta_off = slots_off + n;
        let mut words = vec![0u32; meta_off + 2 * n];
        let mut positions = Vec::with_capacity(n);
        let mut picks = Vec::with_capacity(seqs.len());
        let mut t = 0;
        for s in seqs {
            let table_off = words.len();
            words.extend_from_slice(s.block_table);
            for &id in s.block_table {
                if id as usize >= kv.num_blocks {
                    return Err(Error::Config(format!(
                        "KV block {id} is outside the GPU cache ({} blocks)",
                        kv.num_blocks
                    )));
                }
            }
            let len = s.tokens.len();
            for (i, &tok) in s.tokens.iter().enumerate() {
                let pos = s.start_pos + i;
                if tok as usize >= cfg.vocab {
                    return Err(Error::Config(format!(
                        "token id {tok} is outside the vocabulary ({})",
                        cfg.vocab
                    )));
                }
                if pos >= cfg.context_length {
                    return Err(Error::Config(format!(
                        "position {pos} is past the context length {}",
                        cfg.context_length
                    )));
                }
                let block = *s.block_table.get(pos / BLOCK_SIZE).ok_or_else(|| {
                    Error::Config(format!("no KV block reserved for position {pos}"))
                })?;
                words[t] = tok;
                words[slots_off + t] = block * BLOCK_SIZE as u32 + (pos % BLOCK_SIZE) as u32;
                words[meta_off + 2 * t] = pos as u32;
                words[meta_off + 2 * t + 1] = table_off as u32;
                positions.push(pos);
                t += 1;
            }
            let start = t - len;
            picks.push(match s.logits {
                LogitsRequest::None => start..start,
                LogitsRequest::Last if len > 0 => t - 1..t,
                LogitsRequest::Last => start..start,
                LogitsRequest::All => start..t,
            });
        }
        if u32::try_from(words.len()).is_err() {
            return Err(Error::Config("step metadata exceeds u32 indexing".into()));
        }
        let mut cs = Vec::new();
        push_cs(&self.rope, &positions, &mut cs);
        let cs_local_off = cs.len();
        if let Some(r) = &self.rope_local {
            push_cs(r, &positions, &mut cs);
        }
        Ok(StepInputs {
            n,
            words,
            slots_off,
            meta_off,
            cs,
            cs_local_off,
            picks,
        })
    }

    fn scratch(&self, n: usize) -> Result<Scratch> {
        let c = &self.config;
        let ctx = self.ctx.as_ref();
        let f = |len: usize| storage_f32(ctx, len);
        let (d, qd, kvd) = (c.hidden, c.q_dim(), c.kv_dim());
        let qk_raw = if c.qk_norm {
            Some((f(n * qd)?, f(n * kvd)?))
        } else {
            None
        };
        Ok(Scratch {
            h: f(n * d)?,
            xn: f(n * d)?,
            q: f(n * qd)?,
            k: f(n * kvd)?,
            v: f(n * kvd)?,
            qk_raw,
            att: f(n * qd)?,
            tmp: f(n * d)?,
            tmp2: f(n * d)?,
            gate: f(n * c.ffn)?,
            up: f(n * c.ffn)?,
        })
    }

    fn linear(
        &self,
        enc: &mut StepEncoder<'_>,
        l: &GpuLinear,
        x: &Buffer,
        out: &Buffer,
        n: usize,
    ) -> Result<()> {
        record_matmul(enc, &l.w, &MatmulIo::new(x, out, n))?;
        if let Some(b) = l.bias {
            record_add(
                enc,
                Span::whole(out),
                Span::new(&self.vectors, b),
                n * l.w.rows,
                l.w.rows,
            )?;
        }
        Ok(())
    }

    fn norm(
        &self,
        enc: &mut StepEncoder<'_>,
        w: usize,
        x: &Buffer,
        out: &Buffer,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        let eps = self.config.rms_eps;
        record_rms_norm(
            enc,
            Span::new(&self.vectors, w),
            Span::whole(x),
            Span::whole(out),
            rows,
            cols,
            eps,
        )?;
        Ok(())
    }

    /// Records the whole step; returns the logits buffer (`rows × vocab`) when any row is
    /// requested.
    fn record_step(
        &self,
        enc: &mut StepEncoder<'_>,
        inp: &StepInputs,
        kv: &GpuKvCache,
        words: &Buffer,
        cs: &Buffer,
        s: &Scratch,
    ) -> Result<Option<PooledBuffer>> {
        let c = &self.config;
        let n = inp.n;
        let (d, hd) = (c.hidden, c.head_dim);
        record_embed(
            enc,
            &self.embed,
            Span::whole(words),
            Span::whole(&s.h),
            n,
            c.embed_scale,
        )?;
        for (l, lw) in self.layers.iter().enumerate() {
            self.norm(enc, lw.attn_norm, &s.h, &s.xn, n, d)?;
            let (q_out, k_out): (&Buffer, &Buffer) = match &s.qk_raw {
                Some((qr, kr)) => (qr, kr),
                None => (&s.q, &s.k),
            };
            self.linear(enc, &lw.q, &s.xn, q_out, n)?;
            self.linear(enc, &lw.k, &s.xn, k_out, n)?;
            self.linear(enc, &lw.v, &s.xn, &s.v, n)?;
            if let (Some((qr, kr)), Some(qn), Some(kn)) = (&s.qk_raw, lw.q_norm, lw.k_norm) {
                self.norm(enc, qn, qr, &s.q, n * c.n_heads, hd)?;
                self.norm(enc, kn, kr, &s.k, n * c.n_kv_heads, hd)?;
            }
            let local = c.local_layers[l];
            let (rope, cs_off) = match (&self.rope_local, local) {
                (Some(r), true) => (r, inp.cs_local_off),
                _ => (&self.rope, 0),
            };
            let half = rope.n_rot / 2;
            record_rope(
                enc,
                rope.mode,
                Span::new(cs, cs_off),
                Span::whole(&s.q),
                n,
                c.n_heads,
                hd,
                half,
            )?;
            record_rope(
                enc,
                rope.mode,
                Span::new(cs, cs_off),
                Span::whole(&s.k),
                n,
                c.n_kv_heads,
                hd,
                half,
            )?;
            let slots = Span::new(words, inp.slots_off);
            record_kv_write(
                enc,
                Span::whole(&s.k),
                slots,
                &kv.k[l],
                kv.dtype,
                n,
                c.kv_dim(),
            )?;
            record_kv_write(
                enc,
                Span::whole(&s.v),
                slots,
                &kv.v[l],
                kv.dtype,
                n,
                c.kv_dim(),
            )?;
            let shape = AttnShape {
                n_tokens: n,
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                head_dim: hd,
                scale: c.attn_scale,
                window: if local { c.sliding_window } else { None },
                dtype: kv.dtype,
            };
            let meta = Span::new(words, inp.meta_off);
            record_attention(
                enc,
                &shape,
                Span::whole(&s.q),
                &kv.k[l],
                &kv.v[l],
                meta,
                &s.att,
            )?;
            self.linear(enc, &lw.o, &s.att, &s.tmp, n)?;
            self.residual(enc, lw.post_attn_norm, &s.h, &s.tmp, &s.tmp2, n)?;
            self.norm(enc, lw.ffn_norm, &s.h, &s.xn, n, d)?;
            self.linear(enc, &lw.gate, &s.xn, &s.gate, n)?;
            self.linear(enc, &lw.up, &s.xn, &s.up, n)?;
            let act = match c.activation {
                Activation::Silu => GateAct::Silu,
                Activation::GeluTanh => GateAct::GeluTanh,
            };
            record_gate_mul(
                enc,
                act,
                Span::whole(&s.gate),
                Span::whole(&s.up),
                n * c.ffn,
            )?;
            self.linear(enc, &lw.down, &s.gate, &s.tmp, n)?;
            self.residual(enc, lw.post_ffn_norm, &s.h, &s.tmp, &s.tmp2, n)?;
        }
        let m: usize = inp.picks.iter().map(|r| r.len()).sum();
        if m == 0 {
            return Ok(None);
        }
        self.norm(enc, self.output_norm, &s.h, &s.xn, n, d)?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let logits = storage_f32(&self.ctx, m * c.vocab)?;
        let mut row = 0;
        for r in inp.picks.iter().filter(|r| !r.is_empty()) {
            if !(r.start * d).is_multiple_of(4) {
                return Err(Error::Unsupported(format!(
                    "GPU logits need hidden % 4 == 0, got {d}"
                )));
            }
            let io = MatmulIo {
                x: &s.xn,
                x_offset: r.start * d,
                out: &logits,
                out_offset: row * c.vocab,
                out_stride: None,
                n_tokens: r.len(),
            };
            record_matmul(enc, head, &io)?;
            row += r.len();
        }
        Ok(Some(logits))
    }

    /// `h += post_norm(x)` (`tmp` holds the norm's output when there is one).
    fn residual(
        &self,
        enc: &mut StepEncoder<'_>,
        post: Option<usize>,
        h: &Buffer,
        x: &Buffer,
        tmp: &Buffer,
        n: usize,
    ) -> Result<()> {
        let d = self.config.hidden;
        let src = match post {
            Some(w) => {
                self.norm(enc, w, x, tmp, n, d)?;
                tmp
            }
            None => x,
        };
        record_add(enc, Span::whole(h), Span::whole(src), n * d, n * d)?;
        Ok(())
    }

    /// Uploads the inputs, records and submits the step; `finish` records the read-back
    /// side (argmax) before submission and reads the result after.
    fn run_step<T>(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &GpuKvCache,
        finish: impl FnOnce(
            &mut StepEncoder<'_>,
            &StepInputs,
            Option<&PooledBuffer>,
        ) -> Result<Option<PooledBuffer>>,
        read: impl FnOnce(&StepInputs, Option<&PooledBuffer>, Option<&PooledBuffer>) -> Result<T>,
    ) -> Result<T> {
        let inp = self.prepare(seqs, kv)?;
        if inp.n == 0 {
            return read(&inp, None, None);
        }
        let ctx = self.ctx.as_ref();
        let words = upload_f32(ctx, bytemuck::cast_slice(&inp.words))?;
        let cs = upload_f32(ctx, &inp.cs)?;
        let scratch = self.scratch(inp.n)?;
        let mut enc = StepEncoder::new(ctx, "forward");
        let logits = self.record_step(&mut enc, &inp, kv, &words, &cs, &scratch)?;
        let extra = finish(&mut enc, &inp, logits.as_ref())?;
        self.last_dispatches
            .store(enc.dispatch_count(), Ordering::Relaxed);
        enc.submit()?;
        read(&inp, logits.as_ref(), extra.as_ref())
    }

    /// Run one step over `seqs`, appending their K/V to `kv`; same contract as the CPU
    /// [`Model::forward`](crate::Model::forward).
    pub fn forward(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<Logits> {
        let vocab = self.config.vocab;
        self.run_step(
            seqs,
            kv,
            |_, _, _| Ok(None),
            |inp, logits, _| {
                let m: usize = inp.picks.iter().map(|r| r.len()).sum();
                let data = match logits {
                    Some(b) => read_f32(&self.ctx, b, 0, m * vocab)?,
                    None => Vec::new(),
                };
                Ok(Logits {
                    data,
                    vocab,
                    rows_per_seq: inp.picks.iter().map(|r| r.len()).collect(),
                })
            },
        )
    }

    /// Like [`GpuModel::forward`], but reads back only the argmax token id of every
    /// requested logits row (greedy decoding), in row order.
    pub fn forward_argmax(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<Vec<u32>> {
        let vocab = self.config.vocab;
        self.run_step(
            seqs,
            kv,
            |enc, inp, logits| {
                let Some(l) = logits else { return Ok(None) };
                let m: usize = inp.picks.iter().map(|r| r.len()).sum();
                let ids = storage_f32(&self.ctx, m)?;
                record_argmax(enc, Span::whole(l), Span::whole(&ids), m, vocab, vocab)?;
                Ok(Some(ids))
            },
            |inp, _, ids| {
                let m: usize = inp.picks.iter().map(|r| r.len()).sum();
                match ids {
                    Some(b) => Ok(bytemuck::pod_collect_to_vec(&read_bytes(
                        &self.ctx,
                        b,
                        0,
                        m as u64 * 4,
                    )?)),
                    None => Ok(Vec::new()),
                }
            },
        )
    }

    /// Dispatches recorded by the last step (one submit each).
    pub fn dispatch_count(&self) -> u32 {
        self.last_dispatches.load(Ordering::Relaxed)
    }
}
