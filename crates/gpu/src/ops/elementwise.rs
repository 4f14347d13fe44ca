//! Element-wise launchers: gated activations (`silu_mul`, `gelu_tanh_mul`) and `add`.

use super::{dispatch_op, grid, to_u32, wg, Span};
use crate::op::Op;
use crate::{Error, Result, StepEncoder};

/// The MLP gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAct {
    /// `silu(gate) · up`.
    Silu,
    /// `gelu_tanh(gate) · up`.
    GeluTanh,
}

/// Record `out[t, c] = act(gu[t, c]) · gu[t, width + c]` for `n_tokens` tokens and
/// `c < width`: gate and up of a token side by side in `gu` (rows `stride` floats apart),
/// `out` contiguous (`n_tokens × width`). Different buffers.
pub fn record_gate_mul(
    enc: &mut StepEncoder<'_>,
    act: GateAct,
    gu: Span<'_>,
    out: Span<'_>,
    n_tokens: usize,
    width: usize,
    stride: usize,
) -> Result<()> {
    const OP: &str = "gate_mul";
    if n_tokens == 0 || width == 0 || stride < 2 * width {
        return Err(Error::shape(
            OP,
            format!("{n_tokens} tokens of width {width}, stride {stride} (≥ 2 · width)"),
        ));
    }
    let n = n_tokens * width;
    let go = gu.check(OP, "gu", (n_tokens - 1) * stride + 2 * width)?;
    let oo = out.check(OP, "out", n)?;
    let op = match act {
        GateAct::Silu => Op::SiluMul,
        GateAct::GeluTanh => Op::GeluTanhMul,
    };
    let groups = grid(enc, OP, n, wg(op))?;
    let params = [
        to_u32(OP, "n", n)?,
        width as u32,
        to_u32(OP, "stride", stride)?,
        go,
        oo,
        0,
        0,
        0,
    ];
    dispatch_op(enc, op, params, &[gu.buffer, out.buffer], groups)
}

/// Record `dst[i] += src[i % src_len]` for `n` elements (`src_len = n`: residual add;
/// the row length: a broadcast bias). Different buffers.
pub fn record_add(
    enc: &mut StepEncoder<'_>,
    dst: Span<'_>,
    src: Span<'_>,
    n: usize,
    src_len: usize,
) -> Result<()> {
    const OP: &str = "add";
    if n == 0 || src_len == 0 || src_len > n {
        return Err(Error::shape(OP, format!("n {n}, src_len {src_len}")));
    }
    let d = dst.check(OP, "dst", n)?;
    let s = src.check(OP, "src", src_len)?;
    let groups = grid(enc, OP, n, wg(Op::Add))?;
    let params = [n as u32, src_len as u32, d, s, 0, 0, 0, 0];
    dispatch_op(enc, Op::Add, params, &[src.buffer, dst.buffer], groups)
}
