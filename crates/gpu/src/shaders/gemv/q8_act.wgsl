// 8-bit activations for the Dp4a kernels (gemv_body_q8, gemv_multi_body_q8): one
// 32-element unit quantized as q = round(x / d), d = max |x| / 127, packed i8 (elements
// 0..15 in lo, 16..31 in hi), with (d, d sum q) for the formats' zero points and mins.
struct XQ8 {
    lo: vec4<u32>,
    hi: vec4<u32>,
    d: vec2<f32>,
}

// Quantize 4 floats with 1 / d into packed i8.
fn q8x4(v: vec4<f32>, inv: f32) -> u32 {
    return pack4xI8Clamp(vec4<i32>(round(v * inv)));
}

fn q8_sum(v: vec4<f32>, inv: f32) -> i32 {
    let q = clamp(vec4<i32>(round(v * inv)), vec4<i32>(-128), vec4<i32>(127));
    return (q.x + q.y) + (q.z + q.w);
}

// The unit whose first vec4 is x group k of the token at vec4 index xb (zero past c4), as
// the kernel's input hook (x_plain / x_norm) reads it.
fn quant_unit(xb: u32, k: u32, c4: u32) -> XQ8 {
    var v: array<vec4<f32>, 8>;
    var m = vec4<f32>(0.0);
    for (var i = 0u; i < 8u; i++) {
        v[i] = x_in(xb, k + i, c4);
        m = max(m, abs(v[i]));
    }
    let amax = max(max(m.x, m.y), max(m.z, m.w));
    let d = amax / 127.0;
    let inv = select(0.0, 1.0 / d, d > 0.0);
    var r: XQ8;
    r.lo = vec4<u32>(q8x4(v[0], inv), q8x4(v[1], inv), q8x4(v[2], inv), q8x4(v[3], inv));
    r.hi = vec4<u32>(q8x4(v[4], inv), q8x4(v[5], inv), q8x4(v[6], inv), q8x4(v[7], inv));
    var s = 0;
    for (var i = 0u; i < 8u; i++) {
        s += q8_sum(v[i], inv);
    }
    r.d = vec2<f32>(d, d * f32(s));
    return r;
}
