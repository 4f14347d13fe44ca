//! Recording one forward step of a [`GpuModel`]: embed, every layer's ops and the LM head
//! of the requested rows, all into one [`StepEncoder`] (one compute pass).

use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    record_add, record_attention, record_embed, record_gate_mul, record_kv_write, record_matmul,
    record_rms_norm, record_rope, storage_f32, AttnShape, GateAct, MatmulIo, PooledBuffer, Span,
    StepEncoder,
};

use super::inputs::StepInputs;
use super::{GpuKvCache, GpuLinear, GpuModel};
use crate::config::Activation;
use crate::{Error, Result};

/// The requested logits rows of a step, `per_page` rows (of `vocab` floats) per buffer.
pub(super) struct LogitsPages {
    pub(super) pages: Vec<PooledBuffer>,
    pub(super) per_page: usize,
    pub(super) rows: usize,
}

impl LogitsPages {
    /// (buffer, rows in it) in row order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&PooledBuffer, usize)> {
        self.pages.iter().enumerate().map(|(i, b)| {
            let before = i * self.per_page;
            (b, self.per_page.min(self.rows - before))
        })
    }
}

/// Activations of a step, alive until it is submitted.
pub(super) struct Scratch {
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
    pub(super) fn scratch(&self, n: usize) -> Result<Scratch> {
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
    pub(super) fn record_step(
        &self,
        enc: &mut StepEncoder<'_>,
        inp: &StepInputs,
        kv: &GpuKvCache,
        words: &Buffer,
        cs: &Buffer,
        s: &Scratch,
    ) -> Result<Option<LogitsPages>> {
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
        // Pages of rows that each fit one storage binding (256 rows of a 262k vocabulary
        // do not).
        let vocab_bytes = (c.vocab as u64).saturating_mul(4).max(1);
        let per = usize::try_from(self.logits_page_bytes / vocab_bytes)
            .unwrap_or(usize::MAX)
            .max(1);
        let mut pages: Vec<PooledBuffer> = Vec::new();
        let mut row = 0;
        for r in inp.picks.iter().filter(|r| !r.is_empty()) {
            let mut t = r.start;
            while t < r.end {
                let (page, in_page) = (row / per, row % per);
                if page == pages.len() {
                    pages.push(storage_f32(&self.ctx, per.min(m - row) * c.vocab)?);
                }
                let take = (r.end - t).min(per - in_page);
                if !(t * d).is_multiple_of(4) {
                    return Err(Error::Unsupported(format!(
                        "GPU logits need hidden % 4 == 0, got {d}"
                    )));
                }
                let io = MatmulIo {
                    x: &s.xn,
                    x_offset: t * d,
                    out: &pages[page],
                    out_offset: in_page * c.vocab,
                    out_stride: None,
                    n_tokens: take,
                };
                record_matmul(enc, head, &io)?;
                t += take;
                row += take;
            }
        }
        Ok(Some(LogitsPages {
            pages,
            per_page: per,
            rows: m,
        }))
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
}
