//! Recording one transformer block of a GPU step. q|k|v and gate|up come out of one fused
//! projection each, interleaved per token, and the ops downstream read them in place:
//! one `rope_kv` dispatch ropes q (into `qr`) and k and stores K and V in the cache; fused
//! decode steps fold it into the q|k|v GEMV where they can (`gemv_norm_rope_kv`).

use marlin_core::rope::RopeMode;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    record_gemv_fused, record_rms_norm_grouped, record_rope_kv, CacheDtype, GemvFuse, MatmulIo,
    RopeKvIo, RopeKvOut, RopeKvShape, Span, StepEncoder,
};

use super::inputs::StepInputs;
use super::step::Scratch;
use super::{GpuKvCache, GpuLayer, GpuModel};
use crate::Result;

/// Whether fused decode steps fold RoPE and the KV write into the q|k|v GEMV
/// (`MARLIN_GPU_ROPE_GEMV=0` keeps `rope_kv`).
pub(super) fn rope_gemv_default() -> bool {
    std::env::var("MARLIN_GPU_ROPE_GEMV").map_or(true, |v| v != "0")
}

impl GpuModel {
    /// Layers whose one-token steps rope q and k and write a `dtype` cache inside their
    /// q|k|v GEMV (no `rope_kv` dispatch).
    pub fn rope_folded_layers(&self, dtype: CacheDtype) -> usize {
        let c = &self.config;
        (0..self.layers.len())
            .filter(|&l| {
                let lw = &self.layers[l];
                let rope = match (&self.rope_local, c.local_layers[l]) {
                    (Some(r), true) => r,
                    _ => &self.rope,
                };
                self.fused_decode
                    && lw.mla.is_none()
                    && lw.fused.is_some()
                    && self.rope_in_gemv(lw, rope.mode, dtype)
            })
            .count()
    }

    /// Whether a fused decode step of `lw` can rope q and k and write the cache in its q|k|v
    /// GEMV: adjacent-pair RoPE, an f16 cache, one q|k|v weight without bias or head norms.
    fn rope_in_gemv(&self, lw: &GpuLayer, mode: RopeMode, dtype: CacheDtype) -> bool {
        self.rope_gemv
            && mode == RopeMode::Normal
            && dtype == CacheDtype::F16
            && lw.qkv.parts.len() == 1
            && lw.qkv.bias.is_none()
            && lw.q_norm.is_none()
            && lw.k_norm.is_none()
    }

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
        let local = c.local_layers[l];
        let (rope, cs_off) = match (&self.rope_local, local) {
            (Some(r), true) => (r, inp.cs_local_off),
            _ => (&self.rope, 0),
        };
        let (kc, vc) = (&kv.k[l], &kv.v[l]);
        if let Some(f) = fused.filter(|_| self.rope_in_gemv(lw, rope.mode, kv.dtype)) {
            // RoPE and the cache write ride in the q|k|v GEMV's output; q stays in s.qkv.
            let rope = RopeKvOut {
                cs,
                words,
                record: inp.rope_rec[usize::from(local && self.rope_local.is_some())],
                k_cache: kc,
                v_cache: vc,
                qkv_rows: stride,
            };
            let fuse = GemvFuse::NormRopeKv {
                norm: f.attn(),
                rope: &rope,
            };
            record_gemv_fused(enc, &lw.qkv.parts[0], &MatmulIo::new(&s.h, &s.qkv, 1), fuse)?;
            let window = if local { c.sliding_window } else { None };
            let shape = self.attn_shape(n, window, kv.dtype);
            self.record_attn(enc, &shape, inp, &s.qkv, kc, vc, words, s)?;
            return self.fused_tail(enc, lw, f, &s.att, s);
        }
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
