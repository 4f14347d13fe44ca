//! Causal grouped-query attention over the paged KV cache (prefill and decode), one pass
//! with an online softmax, reading K/V block by block through the sequence's block table.
//!
//! Work is split over (query token, kv head) — the query heads sharing a kv head run together
//! so each K/V row is decoded once for the group — and, when that gives too few tasks for
//! the thread pool (decode), also over key ranges whose partial softmax states are merged.

mod dispatch;
mod math;
mod mla;
mod online;

use rayon::prelude::*;

use crate::kv::{KvRows, KvStorage, PagedKv};
use crate::matmul::Isa;
use crate::{Error, Result};
use dispatch::{kernel_for, Kernel};
use online::{Ctx, State};

pub use mla::mla_attention;

/// Fewest keys worth giving a thread of their own.
const MIN_SPLIT_KEYS: usize = 128;

/// Attention of `n_q` query tokens (`q`, `out`: `n_q × n_heads × head_dim`; token `j` at
/// absolute position `q_positions[j]`) against the keys of one sequence in `kv`.
///
/// Query `j` sees key positions `t ≤ p` and, with a `window` `w`, `t > p − w`; scores are
/// `scale · q·k`; query head `h` uses kv head `h / (n_heads / n_kv_heads)`. Every key at a
/// position up to `max(q_positions)` must already be written. A query that sees no key gets
/// zeros.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    q_positions: &[usize],
    kv: &PagedKv,
    block_table: &[u32],
    n_heads: usize,
    scale: f32,
    window: Option<usize>,
    out: &mut [f32],
) -> Result<()> {
    attention_with_isa(
        Isa::best(),
        q,
        q_positions,
        kv,
        block_table,
        n_heads,
        scale,
        window,
        out,
    )
}

/// [`attention`] with the inner loop compiled for `isa` (tests and benchmarks compare
/// them); an `isa` this CPU lacks falls back to the portable kernel.
#[allow(clippy::too_many_arguments)]
pub fn attention_with_isa(
    isa: Isa,
    q: &[f32],
    q_positions: &[usize],
    kv: &PagedKv,
    block_table: &[u32],
    n_heads: usize,
    scale: f32,
    window: Option<usize>,
    out: &mut [f32],
) -> Result<()> {
    let layout = kv.layout();
    let (n_kv, hd, bs) = (layout.n_kv_heads, layout.head_dim, layout.block_size);
    let n_q = q_positions.len();
    if n_kv == 0 || n_heads == 0 || !n_heads.is_multiple_of(n_kv) {
        return Err(shape(format!(
            "{n_heads} query heads is not a multiple of {n_kv} kv heads"
        )));
    }
    let len = n_q * n_heads * hd;
    if q.len() != len || out.len() != len {
        return Err(shape(format!(
            "q/out have {}/{} values, {n_q} tokens × {n_heads} heads × {hd} need {len}",
            q.len(),
            out.len()
        )));
    }
    let (Some(&max_pos), Some(min_lo)) = (
        q_positions.iter().max(),
        q_positions.iter().map(|&p| key_start(p, window)).min(),
    ) else {
        return Ok(());
    };
    for pos in (min_lo..=max_pos).step_by(bs) {
        kv.slot_index(block_table, pos)?;
    }
    kv.slot_index(block_table, max_pos)?;

    let group = n_heads / n_kv;
    // One monomorphized kernel per storage type: rows decode inside the inner loop.
    macro_rules! go {
        ($rows:expr) => {{
            let ctx = Ctx {
                rows: $rows,
                block_table,
                block_size: bs,
                n_kv_heads: n_kv,
                head_dim: hd,
                group,
                scale,
            };
            run(&ctx, kernel_for(isa), q, q_positions, window, out)
        }};
    }
    match kv.storage() {
        KvStorage::F16(rows) => go!(rows),
        KvStorage::Quant(rows) => go!(rows),
    }
    Ok(())
}

/// First key position query position `p` sees (`p + 1` when it sees none).
fn key_start(p: usize, window: Option<usize>) -> usize {
    window.map_or(0, |w| (p + 1).saturating_sub(w))
}

fn run<R: KvRows>(
    ctx: &Ctx<'_, R>,
    kernel: Kernel<R>,
    q: &[f32],
    q_positions: &[usize],
    window: Option<usize>,
    out: &mut [f32],
) {
    let (n_kv, gl) = (ctx.n_kv_heads, ctx.group * ctx.head_dim);
    let tasks = q_positions.len() * n_kv;
    let want = rayon::current_num_threads() * 2;
    let task = |(c, o): (usize, &mut [f32])| {
        let (p, g) = (q_positions[c / n_kv], c % n_kv);
        let qg = &q[c * gl..(c + 1) * gl];
        let (lo, hi) = (key_start(p, window), p + 1);
        let n_keys = hi.saturating_sub(lo);
        let splits = if tasks >= want {
            1
        } else {
            want.div_ceil(tasks).min(n_keys / MIN_SPLIT_KEYS).max(1)
        };
        if splits == 1 {
            kernel(ctx, qg, g, lo, hi).finish(o);
            return;
        }
        let step = n_keys.div_ceil(splits).div_ceil(ctx.block_size) * ctx.block_size;
        (0..splits)
            .into_par_iter()
            .map(|s| {
                let a = lo + s * step;
                kernel(ctx, qg, g, a.min(hi), (a + step).min(hi))
            })
            .reduce(|| State::empty(ctx.group, ctx.head_dim), State::merge)
            .finish(o);
    };
    if tasks == 1 {
        task((0, out));
    } else {
        out.par_chunks_exact_mut(gl).enumerate().for_each(task);
    }
}

fn shape(msg: String) -> Error {
    Error::Shape {
        op: "attention",
        msg,
    }
}
