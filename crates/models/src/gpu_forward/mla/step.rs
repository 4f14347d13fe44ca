//! Recording one MLA layer of a GPU step (see the parent module for the dispatches).

use marlin_core::rope::RopeMode;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    mla_gemm_fits, mla_partial_len, mla_splits, moe_gemm_variant_rows, moe_grouped_runs,
    record_attn_mla, record_attn_mla_gemm, record_gather_rows, record_gemv_fused, record_matmul,
    record_mla_latent, record_moe_gemv, record_moe_grouped_rows, record_moe_sort, upload_f32,
    GemvFuse, GpuContext, GpuWeight, MatmulIo, MlaAttnIo, MlaLatentIo, MlaShape, MoeGemvIo,
    MoeGroups, Span, StepEncoder, MLA_HEADS_PER_GROUP,
};

use super::super::fused::plain;
use super::super::inputs::StepInputs;
use super::super::step::Scratch;
use super::super::{GpuKvCache, GpuModel};
use super::GpuMla;
use crate::{Error, Result};

impl GpuMla {
    /// A buffer of at least `slots` head ids (`i % h`), uploaded once and grown when a
    /// step needs more (decode steps then upload nothing).
    fn head_ids(&self, ctx: &GpuContext, slots: usize, h: usize) -> Result<Buffer> {
        let mut kept = self.head_ids.lock().ok();
        if let Some(Some((cap, b))) = kept.as_deref() {
            if *cap >= slots {
                return Ok(b.buffer().clone());
            }
        }
        let cap = slots.next_power_of_two();
        let ids: Vec<u32> = (0..cap).map(|i| (i % h.max(1)) as u32).collect();
        let b = upload_f32(ctx, bytemuck::cast_slice(&ids))?;
        let out = b.buffer().clone();
        if let Some(slot) = kept.as_deref_mut() {
            *slot = Some((cap, b));
        }
        Ok(out)
    }
}

impl GpuModel {
    /// Record layer `l`'s MLA over the step's tokens (normed input in `s.xn`; with `norm`, a
    /// fused decode step: the residual stream `s.h`, the attention norm folded into the
    /// first projection's GEMVs); returns the buffer holding the per-head outputs
    /// (`n × H·v`, the input of `o_proj`).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::gpu_forward) fn record_mla(
        &self,
        enc: &mut StepEncoder<'_>,
        l: usize,
        m: &GpuMla,
        inp: &StepInputs,
        kv: &GpuKvCache,
        words: &Buffer,
        cs: &Buffer,
        s: &Scratch,
        norm: Option<&Buffer>,
    ) -> Result<Buffer> {
        let c = &self.config;
        let mc = c
            .mla
            .as_ref()
            .ok_or_else(|| Error::Config("MLA layer without an MLA config".into()))?;
        let cache = kv.latent.get(l).ok_or_else(|| {
            Error::Config("GPU KV cache has no latent rows for this model".into())
        })?;
        let (n, h) = (inp.n, c.n_heads);
        let shape = MlaShape {
            n_tokens: n,
            n_heads: h,
            q_lora: m.q_lora,
            rank: mc.kv_lora_rank,
            rope_dim: mc.qk_rope_head_dim,
            neox: self.rope.mode == RopeMode::Neox,
            scale: c.attn_scale,
            eps: mc.lora_norm_eps,
        };
        let bytes = |floats: usize| (floats.max(1) * 4) as u64;
        let a = enc.scratch(bytes(n * m.a.width));
        if norm.is_some() && m.q_lora == 0 {
            // Without q_lora the q projection reads the normed input itself.
            return Err(Error::Unsupported("fused MLA decode without q_lora".into()));
        }
        let x = if norm.is_some() { &s.h } else { &s.xn };
        self.proj_with(enc, &m.a, x, &a, n, norm)?;
        let cq = enc.scratch(bytes(n * m.q_lora));
        let slots = n * h;
        let q_abs = enc.scratch(bytes(slots * shape.rank));
        // Prompt steps make q̃ with one matmul (W_UKᵀ folded into q_b); else q_nope, then
        // the per-head W_UKᵀ GEMV.
        let fold = m.q_fold.as_ref().filter(|_| n >= self.mla_fold_min);
        let first = fold.unwrap_or(&m.q_nope);
        let (q_nope, q_first) = match fold {
            Some(_) => (None, q_abs.clone()),
            None => {
                let b = enc.scratch(bytes(n * m.q_nope.rows));
                (Some(b.clone()), b)
            }
        };
        let q_pe = enc.scratch(bytes(n * m.q_pe.rows));
        // A fused decode step's q GEMVs norm c_q themselves, reading it from `a`: mla_latent
        // then runs beside them (nothing of it is read before attention) instead of before.
        let q_norm = m
            .q_norm
            .as_deref()
            .filter(|_| norm.is_some() && plain(first) && plain(&m.q_pe) && first.cols == m.q_lora);
        if let Some(qn) = q_norm {
            for (w, out) in [(first, &q_first), (&m.q_pe, &q_pe)] {
                record_gemv_fused(enc, w, &MatmulIo::new(&a, out, 1), GemvFuse::Norm(qn))?;
            }
        }
        let io = MlaLatentIo {
            norms: Span::new(&self.vectors, m.norms),
            x: &a,
            cs: Span::whole(cs),
            slots: Span::new(words, inp.slots_off),
            cache,
            cq: &cq,
        };
        record_mla_latent(enc, &shape, &io)?;
        if q_norm.is_none() {
            let qx: &Buffer = if m.q_lora > 0 { &cq } else { &s.xn };
            record_matmul(enc, first, &MatmulIo::new(qx, &q_first, n))?;
            record_matmul(enc, &m.q_pe, &MatmulIo::new(qx, &q_pe, n))?;
        }
        // Slot t·H + j of the per-head GEMVs uses head j's matrix.
        let ids = m.head_ids(&self.ctx, slots, h)?;
        let gemv = |x, out, rows| MoeGemvIo {
            x,
            x_per_slot: 1,
            ids: &ids,
            out,
            slots,
            rows_per_expert: rows,
        };
        // Prompt steps group the slots by head: each head's matrix is read once per chunk of
        // its slots instead of once per slot (on the tensor cores where the device has them).
        let by_head = match self.grouped_heads(m, n, fold.is_none()) {
            true => {
                let k_b = fold.is_none().then_some((&m.k_b, m.k_b.rows / h));
                let stacks: Vec<_> = k_b.into_iter().chain([(&m.v_b, m.v_b.rows / h)]).collect();
                let gemm = moe_gemm_variant_rows(&self.ctx, &stacks, slots, h);
                Some(record_moe_sort(enc, &ids, (slots, h, 1), gemm)?)
            }
            false => None,
        };
        if let Some(q_nope) = &q_nope {
            let io = gemv(q_nope, &q_abs, shape.rank);
            self.per_head(enc, &m.k_b, by_head.as_ref(), &io, m.k_b.cols)?;
        }
        let lat = enc.scratch(bytes(slots * shape.rank));
        // A prompt chunk of one sequence: its queries against the sequence's latent rows as
        // GEMMs. Else one workgroup per group of heads (they share the latent loads).
        let as_gemm =
            inp.one_seq && n >= self.mla_gemm_min && mla_gemm_fits(enc, &shape, inp.max_keys);
        let groups = h.div_ceil(MLA_HEADS_PER_GROUP);
        let splits = match as_gemm {
            true => 1,
            false => mla_splits(inp.max_keys, n, groups, self.mla_split_min_keys),
        };
        let part = (splits > 1).then(|| enc.scratch(bytes(mla_partial_len(&shape, splits))));
        let io = MlaAttnIo {
            q_abs: &q_abs,
            q_pe: &q_pe,
            cs: Span::whole(cs),
            cache,
            meta: Span::new(words, inp.meta_off),
            part: part.as_ref(),
            out: Span::whole(&lat),
        };
        match as_gemm {
            true => record_attn_mla_gemm(enc, &shape, inp.max_keys, &io)?,
            false => record_attn_mla(enc, &shape, splits, inp.max_keys.max(1), &io)?,
        }
        let att = enc.scratch(bytes(slots * mc.v_head_dim));
        let io = gemv(&lat, &att, mc.v_head_dim);
        self.per_head(enc, &m.v_b, by_head.as_ref(), &io, shape.rank)?;
        Ok(att)
    }

    /// Whether a step of `n` tokens runs `m`'s per-head matrices (`W_UV`, and `W_UKᵀ` when
    /// `with_k_b`) grouped by head.
    fn grouped_heads(&self, m: &GpuMla, n: usize, with_k_b: bool) -> bool {
        n >= self.moe_grouped_min
            && [with_k_b.then_some(&m.k_b), Some(&m.v_b)]
                .into_iter()
                .flatten()
                .all(|w| {
                    let rows = w.rows / self.config.n_heads.max(1);
                    rows.is_multiple_of(4) && moe_grouped_runs(&self.ctx, w)
                })
    }

    /// `io.out` slot `s` = head `s % H`'s matrix of `w` times `io.x` row `s` (`cols` floats):
    /// a GEMV per slot, or with `groups` (the slots sorted by head) the rows gathered by
    /// head, one `moe_gemv_multi`, and the outputs gathered back.
    fn per_head(
        &self,
        enc: &mut StepEncoder<'_>,
        w: &GpuWeight,
        groups: Option<&MoeGroups>,
        io: &MoeGemvIo<'_>,
        cols: usize,
    ) -> Result<()> {
        let Some(g) = groups else {
            return Ok(record_moe_gemv(enc, w, io)?);
        };
        let (slots, rows) = (io.slots, io.rows_per_expert);
        let bytes = |floats: usize| (floats * 4) as u64;
        let xg = enc.scratch(bytes(slots * cols));
        let xrows = Span::new(&g.table, g.xrow_off);
        record_gather_rows(
            enc,
            Span::whole(io.x),
            slots,
            cols,
            xrows,
            Span::whole(&xg),
            slots,
        )?;
        let yg = enc.scratch(bytes(slots * rows));
        record_moe_grouped_rows(enc, w, rows, g, &xg, &yg)?;
        let places = Span::new(&g.table, g.inv_off);
        record_gather_rows(
            enc,
            Span::whole(&yg),
            slots,
            rows,
            places,
            Span::whole(io.out),
            slots,
        )?;
        Ok(())
    }
}
