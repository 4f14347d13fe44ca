//! Recording one forward step of a [`GpuModel`]: embed, every layer's ops and the LM head
//! of the requested rows, all into one [`StepEncoder`] (one compute pass).

use marlin_gpu::registry::gemv_multi_wide;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    record_add, record_add_rms_norm, record_embed, record_gather_rows, record_gemv_fused,
    record_matmul, record_matmul_op, record_rms_norm, storage_f32, GemvFuse, MatmulIo, Op,
    PooledBuffer, Span, StepEncoder,
};

use super::inputs::StepInputs;
use super::upload::{GpuLinear, GpuProj};
use super::{GpuKvCache, GpuModel};
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
    pub(super) h: PooledBuffer,
    pub(super) xn: PooledBuffer,
    /// Per token q | k | v (`q_dim + 2 · kv_dim` floats).
    pub(super) qkv: PooledBuffer,
    /// q | k after their head norms (Qwen3, Gemma 3), same layout as `qkv`.
    pub(super) qk_normed: Option<PooledBuffer>,
    /// Roped q, `q_dim` floats per token (attention's input).
    pub(super) qr: PooledBuffer,
    pub(super) att: PooledBuffer,
    pub(super) tmp: PooledBuffer,
    pub(super) tmp2: PooledBuffer,
    /// Per token gate | up (`2 · ffn` floats).
    pub(super) gu: PooledBuffer,
    /// `act(gate) · up`, `ffn` floats per token.
    pub(super) act: PooledBuffer,
    /// Split-K attention partials (allocated when a step first needs them).
    pub(super) part: Option<PooledBuffer>,
}

impl GpuModel {
    pub(super) fn scratch(&self, n: usize) -> Result<Scratch> {
        let c = &self.config;
        let ctx = self.ctx.as_ref();
        let f = |len: usize| storage_f32(ctx, len);
        let (d, w) = (c.hidden, c.q_dim() + 2 * c.kv_dim());
        let qk_normed = if c.qk_norm { Some(f(n * w)?) } else { None };
        Ok(Scratch {
            h: f(n * d)?,
            xn: f(n * d)?,
            qkv: f(n * w)?,
            qk_normed,
            qr: f(n * c.q_dim())?,
            att: f(n * c.q_dim())?,
            tmp: f(n * d)?,
            tmp2: f(n * d)?,
            gu: f(n * 2 * c.ffn)?,
            act: f(n * c.ffn)?,
            part: None,
        })
    }

    pub(super) fn linear(
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

    /// `out[t] = [W_1 x_t | W_2 x_t | …] (+ bias)`: every part writes its rows at its offset
    /// in token rows of `p.width` floats.
    pub(super) fn proj(
        &self,
        enc: &mut StepEncoder<'_>,
        p: &GpuProj,
        x: &Buffer,
        out: &Buffer,
        n: usize,
    ) -> Result<()> {
        self.proj_with(enc, p, x, out, n, None)
    }

    /// [`GpuModel::proj`], or with `norm` (one token) each part's GEMV reads
    /// `rms_norm(x) · w` (`gemv_norm`, the norm's weight and epsilon in `norm`).
    pub(super) fn proj_with(
        &self,
        enc: &mut StepEncoder<'_>,
        p: &GpuProj,
        x: &Buffer,
        out: &Buffer,
        n: usize,
        norm: Option<&Buffer>,
    ) -> Result<()> {
        let mut offset = 0;
        for w in &p.parts {
            let io = MatmulIo {
                x,
                x_offset: 0,
                out,
                out_offset: offset,
                out_stride: Some(p.width),
                n_tokens: n,
            };
            match norm {
                Some(b) => record_gemv_fused(enc, w, &io, GemvFuse::Norm(b))?,
                None => record_matmul(enc, w, &io)?,
            }
            offset += w.rows;
        }
        if let Some(b) = p.bias {
            let bias = Span::new(&self.vectors, b);
            record_add(enc, Span::whole(out), bias, n * p.width, p.width)?;
        }
        Ok(())
    }

    pub(super) fn norm(
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
        let d = c.hidden;
        record_embed(
            enc,
            &self.embed,
            Span::whole(words),
            Span::whole(&s.h),
            n,
            c.embed_scale,
        )?;
        let m: usize = inp.picks.iter().map(|r| r.len()).sum();
        // Each layer's last residual add also applies the norm that follows it: the next
        // layer's attention norm, or the output norm when logits are wanted.
        // A decode step of a fusable model reads the residual stream directly (gemv_norm)
        // and adds into it (gemv_add): no norm or add dispatches.
        let fused = n == 1 && self.fused_decode;
        if let (Some(first), false) = (self.layers.first(), fused) {
            self.norm(enc, first.attn_norm, &s.h, &s.xn, n, d)?;
        }
        for l in 0..self.layers.len() {
            let next = match self.layers.get(l + 1) {
                Some(nl) => Some(nl.attn_norm),
                None if m > 0 => Some(self.output_norm),
                None => None,
            };
            self.record_layer(enc, l, inp, kv, words, cs, s, next, fused)?;
        }
        if m == 0 {
            return Ok(None);
        }
        if fused {
            self.norm(enc, self.output_norm, &s.h, &s.xn, n, d)?;
        }
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        // Pages of rows that each fit one storage binding (256 rows of a 262k vocabulary
        // do not).
        let vocab_bytes = (c.vocab as u64).saturating_mul(4).max(1);
        let per = usize::try_from(self.logits_page_bytes / vocab_bytes)
            .unwrap_or(usize::MAX)
            .max(1);
        let mut pages: Vec<PooledBuffer> = Vec::new();
        let mut row = 0;
        // One kernel for every piece (the op and width of all m rows): a row's logits do not
        // depend on how the rows are split over pages and sequences. Adjacent rows of
        // different sequences share a dispatch (a decode step's head runs once, not once
        // per sequence).
        let op = enc.matmul_op_rows(m, head.rows, head.format);
        let variant = match self.ctx.matmul_variant(op, head.format) {
            v if op == Op::GemvMulti => gemv_multi_wide(v, head.rows, head.cols, m),
            v => v,
        };
        // Rows in more than one run are gathered into `s.tmp` first (free once the last
        // layer is done), so the head reads its weight once per step, not once per run.
        let (x, runs) = match inp.gather_off {
            Some(off) if d.is_multiple_of(4) => {
                let (src, ids) = (Span::whole(&s.xn), Span::new(words, off));
                record_gather_rows(enc, src, n, d, ids, Span::whole(&s.tmp), m)?;
                (&s.tmp, std::iter::once(0..m).collect())
            }
            _ => (&s.xn, inp.pick_runs()),
        };
        for r in runs {
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
                    x,
                    x_offset: t * d,
                    out: &pages[page],
                    out_offset: in_page * c.vocab,
                    out_stride: None,
                    n_tokens: take,
                };
                record_matmul_op(enc, head, &io, op, variant)?;
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
    /// `s.h += post_norm(x)` (through `s.tmp2` when there is a post norm), then
    /// `s.xn = rms_norm(s.h) · next` in the same dispatch when a next norm is given.
    pub(super) fn residual(
        &self,
        enc: &mut StepEncoder<'_>,
        post: Option<usize>,
        x: &Buffer,
        s: &Scratch,
        n: usize,
        next: Option<usize>,
    ) -> Result<()> {
        let d = self.config.hidden;
        let src = match post {
            Some(w) => {
                self.norm(enc, w, x, &s.tmp2, n, d)?;
                &s.tmp2
            }
            None => x,
        };
        match next {
            Some(w) => {
                let (w, eps) = (Span::new(&self.vectors, w), self.config.rms_eps);
                record_add_rms_norm(enc, w, src, &s.h, Span::whole(&s.xn), n, d, eps)?;
            }
            None => record_add(enc, Span::whole(&s.h), Span::whole(src), n * d, n * d)?,
        }
        Ok(())
    }
}
