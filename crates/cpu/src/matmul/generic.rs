//! The correct-but-slow path for formats without a fast kernel: dequantize one weight row at
//! a time into a per-thread buffer (the metal-marlin block decoders, else the reference
//! dequantizer of `marlin-core`) and dot in f32.

use std::cell::RefCell;

use marlin_core::QuantFormat;
use rayon::prelude::*;

use super::driver::Problem;
use super::kernel::{Acts, Ctx};
use super::Isa;
use crate::Result;

thread_local! {
    static ROW: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Rows per parallel task.
const CHUNK_ROWS: usize = 32;

/// Compute `out = W · x` for any format the core dequantizer knows.
pub(super) fn run(format: QuantFormat, isa: Isa, p: &Problem, out: &mut [f32]) -> Result<()> {
    let acts = Acts {
        f: p.x,
        qs: &[],
        ds: &[],
        grp: &[],
        d: &[],
        bsums: &[],
    };
    let ctx = Ctx::new(p.w, p.rows, p.cols, p.n_tokens, acts, out);
    let n_chunks = p.rows.div_ceil(CHUNK_ROWS);
    (0..n_chunks).into_par_iter().try_for_each(|c| {
        ROW.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => rows(format, isa, &ctx, c, &mut buf),
            Err(_) => rows(format, isa, &ctx, c, &mut Vec::new()),
        })
    })
}

fn rows(format: QuantFormat, isa: Isa, ctx: &Ctx, chunk: usize, buf: &mut Vec<f32>) -> Result<()> {
    buf.resize(ctx.cols, 0.0);
    let r0 = chunk * CHUNK_ROWS;
    for r in r0..(r0 + CHUNK_ROWS).min(ctx.rows) {
        if !super::marlin::dequant_row(format, isa, ctx.row(r), buf) {
            marlin_core::formats::dequantize(format, ctx.row(r), buf)?;
        }
        for t in 0..ctx.n_tokens {
            let x = &ctx.acts.f[t * ctx.cols..(t + 1) * ctx.cols];
            let v = dot_f32(isa, buf, x);
            // SAFETY: t < n_tokens, r < rows, and rows r0.. belong to this task alone.
            unsafe { ctx.store(t, r, v) };
        }
    }
    Ok(())
}

/// f32 dot product with the best kernel of `isa`.
pub(crate) fn dot_f32(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: SIMD families are only selectable on CPUs with AVX2/FMA/F16C.
        return unsafe { super::avx2::float::dot_f32(a, b) };
    }
    let _ = isa;
    let mut acc = [0f32; 8];
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        acc[i % 8] += x * y;
    }
    acc.iter().sum()
}
