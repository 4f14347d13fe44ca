//! Absorbed multi-head latent attention (MLA decode form) over a paged latent cache: every
//! head attends the same cached rows `[c_kv ‖ k_pe]` (an MQA with one wide key), and the
//! values are the first `v_len` entries of those rows (the latent `c_kv` itself).
//!
//! Work is split over query tokens; a lone query (decode) also splits its key range over the
//! thread pool and merges the partial softmax states.

use rayon::prelude::*;

use crate::kv_latent::PagedLatent;
use crate::ops::f16_to_f32;
use crate::{Error, Result};

/// Fewest keys worth giving a thread of their own.
const MIN_SPLIT_KEYS: usize = 64;

/// Running softmax state of all heads: max score, weight sum and weighted value sum.
struct State {
    m: Vec<f32>,
    l: Vec<f32>,
    acc: Vec<f32>,
}

impl State {
    fn empty(n_heads: usize, v_len: usize) -> Self {
        Self {
            m: vec![f32::NEG_INFINITY; n_heads],
            l: vec![0.0; n_heads],
            acc: vec![0.0; n_heads * v_len],
        }
    }

    fn merge(mut self, other: State) -> State {
        let v = self.acc.len() / self.m.len().max(1);
        for h in 0..self.m.len() {
            let m = self.m[h].max(other.m[h]);
            if m == f32::NEG_INFINITY {
                continue;
            }
            let (a, b) = ((self.m[h] - m).exp(), (other.m[h] - m).exp());
            self.m[h] = m;
            self.l[h] = self.l[h] * a + other.l[h] * b;
            let acc = &mut self.acc[h * v..(h + 1) * v];
            for (x, &y) in acc.iter_mut().zip(&other.acc[h * v..(h + 1) * v]) {
                *x = *x * a + y * b;
            }
        }
        self
    }

    fn finish(&self, out: &mut [f32]) {
        let v = self.acc.len() / self.m.len().max(1);
        for (h, o) in out.chunks_exact_mut(v).enumerate() {
            let inv = if self.l[h] > 0.0 {
                1.0 / self.l[h]
            } else {
                0.0
            };
            for (x, &a) in o.iter_mut().zip(&self.acc[h * v..(h + 1) * v]) {
                *x = a * inv;
            }
        }
    }
}

/// Dot product with eight independent accumulators (vectorizes without fast-math).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

struct Ctx<'a> {
    cache: &'a PagedLatent,
    block_table: &'a [u32],
    n_heads: usize,
    width: usize,
    v_len: usize,
    scale: f32,
}

/// Attends all heads of one query (`n_heads × width`) over key positions `lo..hi`.
fn attend(ctx: &Ctx<'_>, q: &[f32], lo: usize, hi: usize) -> Result<State> {
    let (h_n, w, v) = (ctx.n_heads, ctx.width, ctx.v_len);
    let bs = ctx.cache.layout().block_size;
    let mut st = State::empty(h_n, v);
    let mut rows = vec![0f32; bs * w];
    let mut scores = vec![0f32; bs];
    let mut pos = lo;
    while pos < hi {
        let n = (bs - pos % bs).min(hi - pos);
        let slot = ctx.cache.slot_index(ctx.block_table, pos)?;
        for k in 0..n {
            f16_to_f32(ctx.cache.slot_row(slot + k), &mut rows[k * w..(k + 1) * w]);
        }
        for h in 0..h_n {
            let qh = &q[h * w..(h + 1) * w];
            let mut mx = st.m[h];
            for k in 0..n {
                scores[k] = ctx.scale * dot(qh, &rows[k * w..(k + 1) * w]);
                mx = mx.max(scores[k]);
            }
            let factor = (st.m[h] - mx).exp();
            let acc = &mut st.acc[h * v..(h + 1) * v];
            if factor != 1.0 {
                acc.iter_mut().for_each(|x| *x *= factor);
            }
            let mut l = st.l[h] * factor;
            for k in 0..n {
                let p = (scores[k] - mx).exp();
                l += p;
                for (a, &r) in acc.iter_mut().zip(&rows[k * w..k * w + v]) {
                    *a += p * r;
                }
            }
            st.l[h] = l;
            st.m[h] = mx;
        }
        pos += n;
    }
    Ok(st)
}

/// Causal MLA attention of `n_q` query tokens against one sequence's latent rows.
///
/// `q` is `n_q × n_heads × width` (per head the absorbed query `[W_UKᵀ q_nope ‖ q_pe]`, `width`
/// = the cache's row width); query `j` at position `q_positions[j]` sees keys `t ≤ p`, scored
/// `scale · q_h·row(t)`. `out` (`n_q × n_heads × v_len`) receives `Σ_t p_h(t) row(t)[..v_len]`.
/// Every key up to `max(q_positions)` must already be written.
#[allow(clippy::too_many_arguments)]
pub fn mla_attention(
    q: &[f32],
    q_positions: &[usize],
    cache: &PagedLatent,
    block_table: &[u32],
    n_heads: usize,
    v_len: usize,
    scale: f32,
    out: &mut [f32],
) -> Result<()> {
    let w = cache.layout().width;
    let n_q = q_positions.len();
    if v_len == 0 || v_len > w || n_heads == 0 {
        return Err(shape(format!(
            "v_len {v_len} / heads {n_heads} invalid for rows of {w}"
        )));
    }
    if q.len() != n_q * n_heads * w || out.len() != n_q * n_heads * v_len {
        return Err(shape(format!(
            "q/out have {}/{} values for {n_q} tokens × {n_heads} heads × {w}/{v_len}",
            q.len(),
            out.len()
        )));
    }
    let Some(&max_pos) = q_positions.iter().max() else {
        return Ok(());
    };
    let bs = cache.layout().block_size;
    for pos in (0..=max_pos).step_by(bs) {
        cache.slot_index(block_table, pos)?;
    }
    cache.slot_index(block_table, max_pos)?;
    let ctx = Ctx {
        cache,
        block_table,
        n_heads,
        width: w,
        v_len,
        scale,
    };
    let (qrow, orow) = (n_heads * w, n_heads * v_len);
    if n_q == 1 {
        let n_keys = max_pos + 1;
        let splits = (rayon::current_num_threads() * 2)
            .min(n_keys / MIN_SPLIT_KEYS)
            .max(1);
        let step = n_keys.div_ceil(splits).div_ceil(bs) * bs;
        let states = (0..splits)
            .into_par_iter()
            .map(|s| {
                let a = (s * step).min(n_keys);
                attend(&ctx, q, a, (a + step).min(n_keys))
            })
            .collect::<Result<Vec<_>>>()?;
        let st = states
            .into_iter()
            .fold(State::empty(n_heads, v_len), State::merge);
        st.finish(out);
        return Ok(());
    }
    out.par_chunks_exact_mut(orow)
        .zip(q.par_chunks_exact(qrow))
        .zip(q_positions.par_iter())
        .try_for_each(|((o, qj), &p)| {
            attend(&ctx, qj, 0, p + 1)?.finish(o);
            Ok(())
        })
}

fn shape(msg: String) -> Error {
    Error::Shape {
        op: "mla_attention",
        msg,
    }
}
