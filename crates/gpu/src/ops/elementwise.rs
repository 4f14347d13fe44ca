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

/// Record `gate[i] = act(gate[i]) · up[i]` for `n` elements (different buffers).
pub fn record_gate_mul(
    enc: &mut StepEncoder<'_>,
    act: GateAct,
    gate: Span<'_>,
    up: Span<'_>,
    n: usize,
) -> Result<()> {
    const OP: &str = "gate_mul";
    if n == 0 {
        return Err(Error::shape(OP, "no elements"));
    }
    let go = gate.check(OP, "gate", n)?;
    let uo = up.check(OP, "up", n)?;
    let op = match act {
        GateAct::Silu => Op::SiluMul,
        GateAct::GeluTanh => Op::GeluTanhMul,
    };
    let groups = grid(enc, OP, n, wg(op))?;
    let params = [to_u32(OP, "n", n)?, go, uo, 0, 0, 0, 0, 0];
    dispatch_op(enc, op, params, &[up.buffer, gate.buffer], groups)
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
