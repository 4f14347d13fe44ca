//! Quantized matrix multiplication on packed weight blocks: `out = W · x` for a linear weight
//! `W [rows, cols]` in any format and `n_tokens` f32 activation rows. Fast formats run
//! integer (or f32 FMA) tile kernels directly on the packed blocks; the rest use a
//! dequantize-one-row fallback.

mod blocks;
mod driver;
mod generic;
mod isa;
pub(crate) mod kernel;
mod marlin;
mod scalar;
mod trellis;
#[cfg(target_arch = "x86_64")]
mod trellis_avx2;
mod trellis_decode;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;

pub use isa::Isa;

use marlin_core::{QTensor, QuantFormat};

use crate::{Error, Result};
use driver::Problem;
use kernel::Kernel;

/// `out[t * rows + r] = Σ_k W[r, k] · x[t * cols + k]` with the best kernels of this CPU.
///
/// `w` is `[rows, cols]`; `x` holds `n_tokens` rows of `cols` values; `out` receives
/// `n_tokens` rows of `rows` values. One token runs the GEMV path (row chunks in parallel),
/// several run the GEMM path (weight row tiles reused across tokens). Work is spread over
/// the current rayon pool; call from inside it (`ThreadPool::install`) for the lowest
/// per-call cost — from outside, GEMVs under 1 MB of weights run on the calling thread.
/// Quantized formats see int8-quantized activations (relative error ≈ 0.5 %); metal-marlin
/// formats decode blocks to f32; trellis weights decode tiles on the fly (f32 activations,
/// Hadamards applied once per call). A weight marked with a Hadamard rotation
/// ([`QTensor::hadamard`]) gets its input rotated first.
pub fn matmul(w: &QTensor, x: &[f32], n_tokens: usize, out: &mut [f32]) -> Result<()> {
    matmul_with(Isa::best(), w, x, n_tokens, out)
}

/// [`matmul`] with an explicit kernel family (tests use it to run the scalar kernels).
pub fn matmul_with(
    isa: Isa,
    w: &QTensor,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
) -> Result<()> {
    if !isa.is_available() {
        return Err(Error::IsaUnavailable(isa.name()));
    }
    let [rows, cols] = w.shape[..] else {
        return Err(shape(format!("weight must be 2-D, got {:?}", w.shape)));
    };
    let need_x = cols.checked_mul(n_tokens);
    if need_x != Some(x.len()) {
        return Err(shape(format!(
            "x has {} values, expected {n_tokens} tokens × {cols}",
            x.len()
        )));
    }
    let need_out = rows.checked_mul(n_tokens);
    if need_out != Some(out.len()) {
        return Err(shape(format!(
            "out has {} values, expected {n_tokens} tokens × {rows}",
            out.len()
        )));
    }
    if n_tokens == 0 || rows == 0 {
        return Ok(());
    }
    if let QuantFormat::Trellis(t) = w.format {
        return trellis::run(isa, t, w.bytes(), (rows, cols), x, n_tokens, out);
    }
    // A weight stored rotated (W·H) needs H·x: rotate a copy of the activations.
    let rotated;
    let x = if w.hadamard() > 0 {
        let mut xr = x.to_vec();
        marlin_core::hadamard::rotate(&mut xr, w.hadamard())?;
        rotated = xr;
        &rotated[..]
    } else {
        x
    };
    let p = Problem {
        w: w.bytes(),
        rows,
        cols,
        x,
        n_tokens,
    };
    match kernel_for(isa, w.format) {
        Some(k) => {
            driver::run(k, isa, &p, out);
            Ok(())
        }
        None => generic::run(w.format, isa, &p, out),
    }
}

/// Whether `format` has a dedicated int8/float tile kernel on `isa` (otherwise it runs the
/// dequantize-row fallback). Trellis answers false: it has its own f32-activation path.
pub fn has_fast_kernel(isa: Isa, format: QuantFormat) -> bool {
    kernel_for(isa, format).is_some()
}

fn kernel_for(isa: Isa, format: QuantFormat) -> Option<&'static Kernel> {
    match isa {
        Isa::Scalar => scalar::kernel_for(format),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::kernel_for(format, false),
        #[cfg(target_arch = "x86_64")]
        Isa::AvxVnni => avx2::kernel_for(format, true),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::AvxVnni => None,
    }
}

fn shape(msg: String) -> Error {
    Error::Shape { op: "matmul", msg }
}
