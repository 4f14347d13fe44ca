//! Runs a format's tile kernels over the whole matrix: activation quantization into a
//! reusable per-thread buffer, then GEMV (row chunks) or GEMM (row tiles × token chunks)
//! spread over the rayon pool.

use std::cell::RefCell;

use rayon::prelude::*;

use super::kernel::{ActKind, Acts, Ctx, Kernel};
use super::Isa;
use crate::quant_act::ActBuf;

thread_local! {
    static ACTS: RefCell<ActBuf> = RefCell::new(ActBuf::default());
}

/// Below this many weight bytes a GEMV runs on the calling thread alone.
const SERIAL_BYTES: usize = 64 * 1024;
/// The same limit for callers outside the rayon pool, which pay for injecting the job and
/// waking a worker (~5–10 µs, about a 1 MB GEMV): run the pool's forward pass inside
/// `ThreadPool::install` to get the low limit.
const SERIAL_BYTES_OUTSIDE_POOL: usize = 1024 * 1024;
/// GEMV tasks per pool thread (load balance on a busy machine vs. per-task cost).
const TASKS_PER_THREAD: usize = 4;
/// Target weight bytes of one GEMM row tile (kept in L1/L2 while tokens stream past).
const TILE_BYTES: usize = 16 * 1024;
/// Tokens per GEMM task. A multiple of 4: 4-token tiles start on whole token groups.
const TOKEN_CHUNK: usize = 64;
const _: () = assert!(TOKEN_CHUNK.is_multiple_of(4));

/// Shapes of one call, already validated by the caller.
pub(super) struct Problem<'a> {
    pub w: &'a [u8],
    pub rows: usize,
    pub cols: usize,
    pub x: &'a [f32],
    pub n_tokens: usize,
}

/// Compute `out = W · x` with kernel `k` of instruction set `isa`.
pub(super) fn run(k: &Kernel, isa: Isa, p: &Problem, out: &mut [f32]) {
    ACTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run_with(k, isa, p, &mut buf, out),
        // Re-entered on this thread (e.g. from a nested rayon task): use a private buffer.
        Err(_) => run_with(k, isa, p, &mut ActBuf::default(), out),
    })
}

fn run_with(k: &Kernel, isa: Isa, p: &Problem, buf: &mut ActBuf, out: &mut [f32]) {
    buf.fill(k.act, p.x, p.cols, p.n_tokens, isa);
    let n = p.cols * p.n_tokens;
    let acts = match k.act {
        ActKind::F32 => Acts {
            f: p.x,
            qs: &[],
            ds: &[],
            grp: &[],
            d: &[],
            bsums: &[],
        },
        ActKind::Q8B32 => Acts {
            f: &[],
            qs: &buf.qs[..n],
            ds: &buf.ds[..n / 32],
            grp: &buf.grp[..p.n_tokens / 4 * (p.cols / 32) * 8],
            d: &[],
            bsums: &[],
        },
        ActKind::Q8B256 => Acts {
            f: &[],
            qs: &buf.qs[..n],
            ds: &[],
            grp: &[],
            d: &buf.d[..n / 256],
            bsums: &buf.bsums[..n / 16],
        },
    };
    let ctx = Ctx::new(p.w, p.rows, p.cols, p.n_tokens, acts, out);
    if p.n_tokens == 1 {
        gemv(k, &ctx);
    } else {
        gemm(k, &ctx);
    }
}

fn gemv(k: &Kernel, ctx: &Ctx) {
    let threads = rayon::current_num_threads();
    let serial_limit = match rayon::current_thread_index() {
        Some(_) => SERIAL_BYTES,
        None => SERIAL_BYTES_OUTSIDE_POOL,
    };
    if threads <= 1 || ctx.w.len() < serial_limit {
        gemv_rows(k, ctx, 0, ctx.rows);
        return;
    }
    let r = k.gemv_r;
    let per_task = ctx.rows.div_ceil(threads * TASKS_PER_THREAD);
    let chunk = per_task.div_ceil(r).max(1) * r;
    let n_chunks = ctx.rows.div_ceil(chunk);
    (0..n_chunks).into_par_iter().for_each(|c| {
        gemv_rows(k, ctx, c * chunk, ((c + 1) * chunk).min(ctx.rows));
    });
}

fn gemv_rows(k: &Kernel, ctx: &Ctx, r0: usize, r1: usize) {
    let mut r = r0;
    // SAFETY (all calls): rows r..r+R lie in r0..r1 ⊆ 0..rows, token 0 exists, and this
    // task is the only one writing rows r0..r1.
    while r + k.gemv_r <= r1 {
        unsafe { (k.gemv)(ctx, r, 0) };
        r += k.gemv_r;
    }
    while r < r1 {
        unsafe { (k.one[0])(ctx, r, 0) };
        r += 1;
    }
}

fn gemm(k: &Kernel, ctx: &Ctx) {
    let rm = k.gemm_r;
    let tile_rows = ((TILE_BYTES / ctx.row_bytes.max(1)) / rm).max(1) * rm;
    let n_rt = ctx.rows.div_ceil(tile_rows);
    let n_tc = ctx.n_tokens.div_ceil(TOKEN_CHUNK);
    let task = |i: usize| {
        let (rt, tc) = (i / n_tc, i % n_tc);
        let r0 = rt * tile_rows;
        let t0 = tc * TOKEN_CHUNK;
        gemm_tile(
            k,
            ctx,
            r0,
            (r0 + tile_rows).min(ctx.rows),
            t0,
            (t0 + TOKEN_CHUNK).min(ctx.n_tokens),
        );
    };
    if rayon::current_num_threads() <= 1 || n_rt * n_tc == 1 {
        (0..n_rt * n_tc).for_each(task);
    } else {
        (0..n_rt * n_tc).into_par_iter().for_each(task);
    }
}

fn gemm_tile(k: &Kernel, ctx: &Ctx, r0: usize, r1: usize, t0: usize, t1: usize) {
    let mut t = t0;
    while t < t1 {
        let nt = (t1 - t).min(4);
        let (f, f1) = (k.gemm[nt - 1], k.one[nt - 1]);
        let mut r = r0;
        // SAFETY (both calls): the tile lies in r0..r1 × t0..t1, which this task owns.
        while r + k.gemm_r <= r1 {
            unsafe { f(ctx, r, t) };
            r += k.gemm_r;
        }
        while r < r1 {
            unsafe { f1(ctx, r, t) };
            r += 1;
        }
        t += nt;
    }
}
