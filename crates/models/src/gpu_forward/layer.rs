//! Recording one transformer block of a GPU step. q|k|v and gate|up come out of one fused
//! projection each, interleaved per token, and the ops downstream read them in place:
//! one `rope_kv` dispatch ropes q (into `qr`) and k and stores K and V in the cache.

use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    record_rms_norm_grouped, record_rope_kv, RopeKvIo, RopeKvShape, Span, StepEncoder,
};

use super::inputs::StepInputs;
use super::step::Scratch;
use super::{GpuKvCache, GpuModel};
use crate::Result;

impl GpuModel {
    /// Head RMSNorm of `rows` heads (`group` per token) at `at` of `x` into `out`.
    #[allow(clippy::too_many_arguments)]
    fn head_norm(
        &self,
        enc: &mut StepEncoder<'_>,
        w: usize,
        x: &Buffer,
        out: &Buffer,
        at: usize,
        n: usize,
        group: usize,
    ) -> Result<()> {
        let c = &self.config;
        let stride = c.q_dim() + 2 * c.kv_dim();
        record_rms_norm_grouped(
            enc,
            Span::new(&self.vectors, w),
            Span::new(x, at),
            Span::new(out, at),
            n * group,
            c.head_dim,
            c.rms_eps,
            group,
            stride,
        )?;
        Ok(())
    }

    /// Record layer `l` over the step's `inp.n` tokens: reads its normed input from `s.xn`,
    /// updates `s.h`, and leaves `rms_norm(s.h) · next` in `s.xn` when `next` is given.
    /// `fused` (a one-token step of a fusable model): reads and updates `s.h` only, its
    /// norms folded into the GEMVs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_layer(
        &self,
        enc: &mut StepEncoder<'_>,
        l: usize,
        inp: &StepInputs,
        kv: &GpuKvCache,
        words: &Buffer,
        cs: &Buffer,
        s: &Scratch,
        next: Option<usize>,
        fused: bool,
    ) -> Result<()> {
        let c = &self.config;
        let lw = &self.layers[l];
        let n = inp.n;
        let fused = if fused { lw.fused.as_ref() } else { None };
        if let Some(m) = &lw.mla {
            if let Some(f) = fused {
                let att = self.record_mla(enc, l, m, inp, kv, words, cs, s, Some(f.attn()))?;
                return self.fused_tail(enc, lw, f, &att, s);
            }
            let att = self.record_mla(enc, l, m, inp, kv, words, cs, s, None)?;
            self.linear(enc, &lw.o, &att, &s.tmp, n)?;
            self.residual(enc, lw.post_attn_norm, &s.tmp, s, n, Some(lw.ffn_norm))?;
            self.record_ffn(enc, &lw.ffn, s, n)?;
            return self.residual(enc, lw.post_ffn_norm, &s.tmp, s, n, next);
        }
        let (hd, qd, kvd) = (c.head_dim, c.q_dim(), c.kv_dim());
        let stride = qd + 2 * kvd;
        match fused {
            Some(f) => self.fused_qkv(enc, lw, f, s)?,
            None => self.proj(enc, &lw.qkv, &s.xn, &s.qkv, n)?,
        }
        // q and k after their head norms; v stays where the projection put it.
        let qk: &Buffer = match (&s.qk_normed, lw.q_norm, lw.k_norm) {
            (Some(out), Some(qn), Some(kn)) => {
                self.head_norm(enc, qn, &s.qkv, out, 0, n, c.n_heads)?;
                self.head_norm(enc, kn, &s.qkv, out, qd, n, c.n_kv_heads)?;
                out
            }
            _ => &s.qkv,
        };
        let local = c.local_layers[l];
        let (rope, cs_off) = match (&self.rope_local, local) {
            (Some(r), true) => (r, inp.cs_local_off),
            _ => (&self.rope, 0),
        };
        let (kc, vc) = (&kv.k[l], &kv.v[l]);
        let rk = RopeKvShape {
            n_tokens: n,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: hd,
            half: rope.n_rot / 2,
            mode: rope.mode,
            dtype: kv.dtype,
        };
        let io = RopeKvIo {
            cs: Span::new(cs, cs_off),
            x: Span::whole(qk),
            v: Span::new(&s.qkv, qd + kvd),
            src_stride: stride,
            slots: Span::new(words, inp.slots_off),
            q_out: &s.qr,
            k_cache: kc,
            v_cache: vc,
        };
        record_rope_kv(enc, &rk, &io)?;
        let window = if local { c.sliding_window } else { None };
        let shape = self.attn_shape(n, window, kv.dtype);
        self.record_attn(enc, &shape, inp, &s.qr, kc, vc, words, s)?;
        if let Some(f) = fused {
            return self.fused_tail(enc, lw, f, &s.att, s);
        }
        self.linear(enc, &lw.o, &s.att, &s.tmp, n)?;
        self.residual(enc, lw.post_attn_norm, &s.tmp, s, n, Some(lw.ffn_norm))?;
        self.record_ffn(enc, &lw.ffn, s, n)?;
        self.residual(enc, lw.post_ffn_norm, &s.tmp, s, n, next)?;
        Ok(())
    }
}
