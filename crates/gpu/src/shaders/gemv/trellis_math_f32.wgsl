// The trellis tile GEMV's f32 math (gemv_body_trellis.wgsl) for MUL1, whose values are
// the integers s - 510 (s the byte sum of the hashed state, tr_row_scale applies the
// 1 / 147.8): 0x4B000000 | s is the f32 2^23 + s, so the value comes from one OR and one
// subtraction (both exact), with no conversion instruction (f16 <-> f32 conversions run
// at a fraction of the arithmetic rate on NVIDIA GPUs, and the f16 math's unpack of the
// hashed word needs them). Products and sums in f32.
alias TE = f32;

fn tr_val(state: u32) -> TE {
    let s = dot4U8Packed(state * 0x83DCD12Du, 0x01010101u);
    return bitcast<f32>(s | 0x4B000000u) - 8389118.0;
}

fn tr_te(v: f32) -> TE {
    return v;
}

fn tr_sum(s: TE) -> f32 {
    return s;
}
