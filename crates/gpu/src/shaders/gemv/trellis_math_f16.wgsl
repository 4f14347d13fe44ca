// The trellis tile GEMV's packed-f16 math (gemv_body_trellis.wgsl): 3INST/MCG values are
// the sum of the two f16 halves of a hashed state, so one fma of the halves with x
// splatted into both lanes adds value times x, two weights' worth of f16 work in one
// instruction and no conversion to f32 per weight. A row's 16 products are summed in f16
// (x is scaled into [1, 2), the values are below 4 in magnitude: no overflow).
alias TE = vec2<f16>;

// The codebook value of a 16-bit state as two f16 halves whose sum is the value (MUL1:
// byte sum - 510 in the low half; tr_row_scale applies its 1 / 147.8).
fn tr_val(state: u32) -> TE {
    if (CODEBOOK == 2u) {
        let s = dot4U8Packed(state * 0x83DCD12Du, 0x01010101u);
        // 0x6400 | s is the f16 1024 + s (s <= 1020); both subtractions are exact.
        return vec2<f16>(tr_f16x2(s | 0x6400u).x - 1534.0h, 0.0h);
    }
    var x = state * 0xCBAC1FEDu;
    if (CODEBOOK == 0u) {
        x = state * 89226354u + 64248484u;
    }
    return tr_f16x2((x & 0x8FFF8FFFu) ^ 0x3B603B60u);
}

// The two f16 halves of v. naga has no u32 -> vec2<f16> bitcast (gfx-rs/wgpu#8896); the
// widening and the narrowing are exact, which lets the shader compiler fold them.
fn tr_f16x2(v: u32) -> vec2<f16> {
    return vec2<f16>(unpack2x16float(v));
}

fn tr_te(v: f32) -> TE {
    return vec2<f16>(f16(v));
}

fn tr_sum(s: TE) -> f32 {
    return f32(s.x + s.y);
}
