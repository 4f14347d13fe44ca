// Shared by every gemv_* / gemm_* kernel: parameters, bindings and byte helpers.
// Bindings (group 0): 0 params (uniform, dynamic offset; matmul_uniform.wgsl declares it as
// p, except in moe_gemm, whose p is per workgroup), 1 w (packed weights, read as
// vec4<u32> so 16-byte-aligned blocks load in one instruction; `word` reads one u32),
// 2 x (f32 activations as vec4, token-major), 3 out (f32, token-major; declared by
// out_plain.wgsl, or out_coherent.wgsl where other workgroups read it back).
// Launcher: src/ops/matmul.rs (MatmulParams must match Params field for field).

struct Params {
    rows: u32,        // weight rows in this chunk
    cols: u32,        // elements per row (= activation length)
    n_tokens: u32,
    row_offset: u32,  // output row of the chunk's first row
    out_stride: u32,  // floats between consecutive tokens in out
    meta_offset: u32, // word index of the scale region (split layouts)
    x_offset: u32,    // vec4 index of token 0 in x
    out_offset: u32,  // float index of (token 0, row 0) in out
}

@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;

// Elements per work unit: one 32-element block or K-quant sub-block.
const UNIT: u32 = 32u;
alias Unit = array<vec4<f32>, 8>;

fn units_per_row() -> u32 {
    return (p.cols + UNIT - 1u) / UNIT;
}

// Unit u of token t's activations; zero past the end of the row.
fn load_x_unit(t: u32, u: u32) -> Unit {
    let c4 = p.cols / 4u;
    let base = p.x_offset + t * c4;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let k = u * 8u + i;
        r[i] = select(vec4<f32>(0.0), x[base + min(k, c4 - 1u)], k < c4);
    }
    return r;
}

// Unit u of token t's activations for the GEMV: named fields (never dynamically indexed,
// so they stay in registers) plus the unit's sum, which folds a format's zero point or
// min out of the per-element math: dot(q * d - m, x) = d * dot(q, x) - m * sum.
struct XUnit {
    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
    a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
    sum: f32,
}

fn x_group(base: u32, k: u32, c4: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), x[base + min(k, c4 - 1u)], k < c4);
}

fn load_xu(t: u32, u: u32) -> XUnit {
    let c4 = p.cols / 4u;
    let b = p.x_offset + t * c4;
    let k = u * 8u;
    var r: XUnit;
    r.a0 = x_group(b, k, c4);
    r.a1 = x_group(b, k + 1u, c4);
    r.a2 = x_group(b, k + 2u, c4);
    r.a3 = x_group(b, k + 3u, c4);
    r.a4 = x_group(b, k + 4u, c4);
    r.a5 = x_group(b, k + 5u, c4);
    r.a6 = x_group(b, k + 6u, c4);
    r.a7 = x_group(b, k + 7u, c4);
    let one = vec4<f32>(1.0);
    r.sum = dot((r.a0 + r.a1) + (r.a2 + r.a3) + ((r.a4 + r.a5) + (r.a6 + r.a7)), one);
    return r;
}

// dot of elements 0..15 (w0..w3) and 16..31 (w4..w7) of a unit with xu.
fn dot_lo(xu: XUnit, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> f32 {
    return (dot(w0, xu.a0) + dot(w1, xu.a1)) + (dot(w2, xu.a2) + dot(w3, xu.a3));
}

fn dot_hi(xu: XUnit, w4: vec4<f32>, w5: vec4<f32>, w6: vec4<f32>, w7: vec4<f32>) -> f32 {
    return (dot(w4, xu.a4) + dot(w5, xu.a5)) + (dot(w6, xu.a6) + dot(w7, xu.a7));
}

fn store_out(t: u32, row: u32, v: f32) {
    out[p.out_offset + t * p.out_stride + p.row_offset + row] = v;
}

// Word i of the weights (counting u32 from the start of w).
fn word(i: u32) -> u32 {
    return w[i >> 2u][i & 3u];
}

// The f16 with index h, counting 2-byte halves from the start of w.
fn half_at(h: u32) -> f32 {
    return unpack2x16float(word(h >> 1u))[h & 1u];
}

// The low (nib_lo) or high (nib_hi) nibbles n of v's four bytes as 1 + n / 16, exact floats
// built with a shift and a mask-or each (no conversion, no subtraction). Callers fold the 1
// into the unit sum: dot(n, x) = 16 * (dot(f, x) - sum(x)), as precise as direct math
// since both terms are of the size of sum(|x|).
fn nib_lo(v: u32) -> vec4<f32> {
    let b = vec4<u32>(v << 19u, v << 11u, v << 3u, v >> 5u) & vec4<u32>(0x00780000u);
    return bitcast<vec4<f32>>(b | vec4<u32>(0x3F800000u));
}

fn nib_hi(v: u32) -> vec4<f32> {
    let b = vec4<u32>(v << 15u, v << 7u, v >> 1u, v >> 9u) & vec4<u32>(0x00780000u);
    return bitcast<vec4<f32>>(b | vec4<u32>(0x3F800000u));
}

// The four bytes of v as unsigned values minus `bias`, low byte first. No int-to-float
// conversion (quarter rate on NVIDIA, the GEMV's bottleneck): 0x4B000000 | b is the float
// 2^23 + b, and subtracting 2^23 + bias is exact for bytes and small biases.
fn u8x4_minus(v: u32, bias: f32) -> vec4<f32> {
    let b = vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xFFu);
    return bitcast<vec4<f32>>(b | vec4<u32>(0x4B000000u)) - (8388608.0 + bias);
}

// The four bytes of v as unsigned values, low byte first.
fn u8x4(v: u32) -> vec4<f32> {
    return u8x4_minus(v, 0.0);
}

// The four bytes of v as signed values, low byte first (b ^ 0x80 = b + 128 as unsigned).
fn i8x4(v: u32) -> vec4<f32> {
    return u8x4_minus(v ^ 0x80808080u, 128.0);
}

// Byte b (0..15, unsigned) of v.
fn vbyte(v: vec4<u32>, b: u32) -> u32 {
    return (v[b >> 2u] >> ((b & 3u) * 8u)) & 0xFFu;
}

// Byte b (0..15, signed) of v.
fn vsbyte(v: vec4<u32>, b: u32) -> f32 {
    let x = v[b >> 2u] << (24u - (b & 3u) * 8u);
    return f32(bitcast<i32>(x) >> 24u);
}

// A unit's integer codes for the Dp4a kernels (`unit_q8` of the formats in DP4A_FORMATS):
// elements 0..15 in lo and 16..31 in hi, one i8 per byte, and ab such that the unit's
// values are ab.x * code - ab.y (zero point or min folded into ab.y).
struct WQ8 {
    lo: vec4<u32>,
    hi: vec4<u32>,
    ab: vec2<f32>,
}

// Dot of a unit's codes wq with 8-bit activations x = d q (xl: elements 0..15, xh: 16..31,
// xd = (d, d sum q)): ab.x d dot(code, q) - ab.y sum(x).
fn dot_q8(wq: WQ8, xl: vec4<u32>, xh: vec4<u32>, xd: vec2<f32>) -> f32 {
    let s = (dot4I8Packed(wq.lo.x, xl.x) + dot4I8Packed(wq.lo.y, xl.y))
        + (dot4I8Packed(wq.lo.z, xl.z) + dot4I8Packed(wq.lo.w, xl.w))
        + (dot4I8Packed(wq.hi.x, xh.x) + dot4I8Packed(wq.hi.y, xh.y))
        + (dot4I8Packed(wq.hi.z, xh.z) + dot4I8Packed(wq.hi.w, xh.w));
    return wq.ab.x * xd.x * f32(s) - wq.ab.y * xd.y;
}
