//! Trellis matmul: `y = svh ⊙ H_n(Q · H_k(suh ⊙ x))` with `Q` decoded tile by tile on the fly
//! (never the whole matrix). The activations are scaled and rotated once per call, the
//! outputs rotated and scaled once; rayon splits the work into 16-row strips.

use marlin_core::formats::trellis::{had_block, layout, read_f32s};
use marlin_core::hadamard::rotate;
use marlin_core::TrellisFormat;
use rayon::prelude::*;

use super::trellis_decode::{strip, x_order, Job, Scratch};
use super::Isa;
use crate::{Error, Result};

/// Below this many weight bytes the call runs on the calling thread.
const SERIAL_BYTES: usize = 64 * 1024;

/// `out[t·n + r] = Σ_j W[r, j] · x[t·k + j]` for a trellis weight `[n, k]` packed in `bytes`.
pub(super) fn run(
    isa: Isa,
    format: TrellisFormat,
    bytes: &[u8],
    (n, k): (usize, usize),
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
) -> Result<()> {
    let lay = layout(format, n, k)?;
    if bytes.len() != lay.bytes {
        return Err(Error::Shape {
            op: "matmul",
            msg: format!(
                "{} [{n}, {k}] needs {} bytes, got {}",
                format.name(),
                lay.bytes,
                bytes.len()
            ),
        });
    }
    if x.len() != n_tokens * k || out.len() != n_tokens * n {
        return Err(Error::Shape {
            op: "matmul",
            msg: format!(
                "{n_tokens} tokens: x {} / out {} values",
                x.len(),
                out.len()
            ),
        });
    }
    let suh = read_f32s(bytes, lay.suh_at, k)?;
    let svh = read_f32s(bytes, lay.svh_at, n)?;
    let mut xs = x.to_vec();
    for xt in xs.chunks_exact_mut(k) {
        for (v, s) in xt.iter_mut().zip(&suh) {
            *v *= s;
        }
    }
    rotate(&mut xs, had_block(k))?;
    if let Some(order) = x_order(isa, format.codebook) {
        for c in xs.chunks_exact_mut(8) {
            let v: [f32; 8] = std::array::from_fn(|i| c[order[i]]);
            c.copy_from_slice(&v);
        }
    }
    let job = Job {
        bytes: &bytes[..lay.suh_at],
        tiles_k: lay.tiles_k,
        tile_bytes: lay.tile_bytes,
        k,
        xs: &xs,
        n_tokens,
    };
    // Strip-major results: strip tn holds n_tokens × 16 outputs.
    let mut strips = vec![0f32; n_tokens * n];
    let per_strip = n_tokens * 16;
    let task = |scr: &mut Scratch, (tn, o): (usize, &mut [f32])| {
        strip(isa, format.bits, format.codebook, &job, tn, o, scr);
    };
    if rayon::current_num_threads() <= 1 || lay.suh_at < SERIAL_BYTES {
        let mut scr = Scratch::default();
        strips
            .chunks_exact_mut(per_strip)
            .enumerate()
            .for_each(|c| task(&mut scr, c));
    } else {
        strips
            .par_chunks_exact_mut(per_strip)
            .enumerate()
            .for_each_init(Scratch::default, task);
    }
    for (tn, s) in strips.chunks_exact(per_strip).enumerate() {
        for (t, row) in s.chunks_exact(16).enumerate() {
            out[t * n + tn * 16..t * n + tn * 16 + 16].copy_from_slice(row);
        }
    }
    rotate(out, had_block(n))?;
    for yt in out.chunks_exact_mut(n) {
        for (y, s) in yt.iter_mut().zip(&svh) {
            *y *= s;
        }
    }
    Ok(())
}
