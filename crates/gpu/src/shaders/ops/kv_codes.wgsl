// kv_codes: FP8 E4M3 / INT8 codes of the quantized paged KV cache, shared by the cache
// writers (kv_write, rope_kv) and the attention kernels. The rule is the CPU's
// (marlin-cpu kv_quant.rs) bit for bit: per head row, scale = amax / M (M = 448 for E4M3,
// 127 for INT8), inv = 1 / scale (0 for an all-zero row), code = encode(x · inv); E4M3
// rounds to nearest even and saturates at ±448 (0x7E), INT8 rounds half away from zero
// and clamps to ±127. A quantized row is 1 + ceil(head_dim / 4) u32 words: the f32 scale,
// then the codes, dim d in byte d % 4 of word 1 + d / 4. Cache dtype codes (`KV_*`) are
// CacheDtype::code() in src/ops/kv.rs. Not the CPU's: NaN inputs (the CPU writes E4M3 0x7F,
// INT8 0) and rows whose amax is below 2^-117 (subnormal scales flush to 0 here).
const KV_F32: u32 = 0u;
const KV_F16: u32 = 1u;
const KV_INT8: u32 = 2u;
const KV_FP8: u32 = 3u;

// Words of one quantized head row.
fn kvq_row_words(hd: u32) -> u32 {
    return 1u + (hd + 3u) / 4u;
}

// a / b rounded to nearest even for finite a ≥ 0 and normal b > 0, by integer long
// division: WGSL's `/` may be 2.5 ULP off, and the scales must equal the CPU's. Subnormal
// inputs and results flush to 0 (GPUs may flush them anyway); overflow gives +inf.
fn div_rn(a: f32, b: f32) -> f32 {
    let ab = bitcast<u32>(a);
    let bb = bitcast<u32>(b);
    if ((ab >> 23u) == 0u) {
        return 0.0;
    }
    let mb = (bb & 0x7FFFFFu) | 0x800000u;
    var ma = (ab & 0x7FFFFFu) | 0x800000u;
    var e = i32(ab >> 23u) - i32(bb >> 23u) + 127;
    if (ma < mb) {
        ma = ma << 1u;
        e -= 1;
    }
    // 24 quotient bits of ma / mb ∈ [1, 2); r ends as twice the remainder.
    var q = 0u;
    var r = ma;
    for (var i = 0u; i < 24u; i++) {
        q = q << 1u;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r = r << 1u;
    }
    if (r > mb || (r == mb && (q & 1u) == 1u)) {
        q += 1u;
    }
    if (q == 0x1000000u) {
        q = 0x800000u;
        e += 1;
    }
    if (e <= 0) {
        return 0.0;
    }
    if (e >= 255) {
        return bitcast<f32>(0x7F800000u);
    }
    return bitcast<f32>((u32(e) << 23u) | (q & 0x7FFFFFu));
}

// (scale, inv) of a row whose largest magnitude is amax.
fn kvq_scale(amax: f32, code: u32) -> vec2<f32> {
    var m = 127.0;
    if (code == KV_FP8) {
        m = 448.0;
    }
    let scale = div_rn(amax, m);
    if (scale > 0.0) {
        return vec2<f32>(scale, div_rn(1.0, scale));
    }
    return vec2<f32>(0.0, 0.0);
}

// E4M3 code of x: nearest, ties to even, saturating at ±448.
fn e4m3_code(x: f32) -> u32 {
    let a = abs(x);
    var mag: u32;
    if (a < 0.015625) {
        // Subnormals are m · 2^-9 (round() is ties-to-even).
        mag = u32(round(a * 512.0));
    } else {
        let b = bitcast<u32>(a);
        // Round the 23-bit mantissa to 3 bits, ties to even; a carry bumps the exponent.
        let r = b + 0x7FFFFu + ((b >> 20u) & 1u);
        let e = (r >> 23u) - 120u;
        mag = min((e << 3u) | ((r >> 20u) & 7u), 0x7Eu);
    }
    if (x < 0.0 && mag != 0u) {
        mag |= 0x80u;
    }
    return mag;
}

// INT8 code of x (as a byte): half away from zero, clamped to ±127. floor(2|x|) needs no
// rounding add (|x| + 0.5 may round up) and no sum a compiler could fuse.
fn i8_code(x: f32) -> u32 {
    let k = u32(min(abs(x), 200.0) * 2.0);
    let m = min((k + 1u) / 2u, 127u);
    if (x < 0.0) {
        return (256u - m) & 0xFFu;
    }
    return m;
}

fn kvq_encode(x: f32, code: u32) -> u32 {
    if (code == KV_FP8) {
        return e4m3_code(x);
    }
    return i8_code(x);
}

// Value of byte code c (before the row scale).
fn kvq_decode(c: u32, code: u32) -> f32 {
    if (code == KV_FP8) {
        let e = (c >> 3u) & 15u;
        let m = c & 7u;
        var v = f32(m) * 0.001953125;
        if (e != 0u) {
            v = bitcast<f32>(((e + 120u) << 23u) | (m << 20u));
        }
        return select(v, -v, (c & 0x80u) != 0u);
    }
    return f32(bitcast<i32>(c << 24u) >> 24u);
}

// Values of the two low bytes of w.
fn kvq_decode2(w: u32, code: u32) -> vec2<f32> {
    return vec2<f32>(kvq_decode(w & 0xFFu, code), kvq_decode((w >> 8u) & 0xFFu, code));
}
