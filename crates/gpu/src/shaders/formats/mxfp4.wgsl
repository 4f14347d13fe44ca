// MXFP4 (ggml's block: an E8M0 scale byte, then 16 bytes of E2M1 nibbles), split layout:
// block blk's 16 code bytes are vec4 blk of the payload region, its scale byte is byte blk
// of the meta region (from word meta_offset). Byte j: element j low nibble, j + 16 high
// nibble. y = E2M1[q] * 2^(e - 127) (ggml: kvalues = 2 E2M1, times 2^(e - 128)).

// E2M1 codes at bits 0..3 and 16..19 of n, times 2^-14: each code placed in an f16 as
// sign | exponent | mantissa (exact, subnormals included).
fn mx_pair(n: u32) -> vec2<f32> {
    return unpack2x16float(((n & 0x00070007u) << 9u) | ((n & 0x00080008u) << 12u));
}

// The low nibbles of v's four bytes (byte order) as E2M1 values times 2^-14.
fn mx4(v: u32) -> vec4<f32> {
    let a = mx_pair(v);
    let b = mx_pair(v >> 8u);
    return vec4<f32>(a.x, b.x, a.y, b.y);
}

// 2^(e - 127) * 2^14 for block blk's scale byte e (e >= 241 overflows to +inf, as ggml's
// 0xFF does).
fn mx_scale(blk: u32) -> f32 {
    let e = (word(p.meta_offset + blk / 4u) >> ((blk % 4u) * 8u)) & 0xFFu;
    return bitcast<f32>(min(e + 14u, 255u) << 23u);
}

fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let s = mx_scale(blk);
    let q = w[blk];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        r[i] = mx4(q[i]) * s;
        r[i + 4u] = mx4(q[i] >> 4u) * s;
    }
    return r;
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let q = w[blk];
    let lo = dot_lo(xu, mx4(q.x), mx4(q.y), mx4(q.z), mx4(q.w));
    let hi = dot_hi(xu, mx4(q.x >> 4u), mx4(q.y >> 4u), mx4(q.z >> 4u), mx4(q.w >> 4u));
    return mx_scale(blk) * (lo + hi);
}

// Dp4a gemv_multi: the block's codes as i8 2 E2M1 (low nibbles: elements 0..15, high:
// 16..31, natural order); y = 2^(e - 128) code.
fn unit_q8(row: u32, u: u32) -> WQ8 {
    let blk = row * (p.cols / 32u) + u;
    let q = w[blk];
    let a = e2m1_i8(q.x);
    let b = e2m1_i8(q.y);
    let c = e2m1_i8(q.z);
    let d = e2m1_i8(q.w);
    let s = mx_scale(blk) * (1.0 / 32768.0);
    return WQ8(vec4<u32>(a.x, b.x, c.x, d.x), vec4<u32>(a.y, b.y, c.y, d.y), vec2<f32>(s, 0.0));
}
