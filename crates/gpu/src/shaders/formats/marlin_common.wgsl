// Shared by the metal-marlin formats (fp4_g*, nvfp4, fp8, int*), stored split on the GPU:
// region 1 holds every 256-element super-block's packed codes back to back, region 2
// (from word meta_offset) its MB bytes of scales / zero points / padding. The registry
// defines GROUP (elements per scale) and MB per format. Unit u (32 elements) of row `row`
// is unit j = u % 8 of super-block sb = row * cols / 256 + u / 8, i.e. global unit
// sb * 8 + j = row * units + u.

fn mm_sb(row: u32, u: u32) -> u32 {
    return row * (p.cols / 256u) + u / 8u;
}

// Scale group of unit j within its super-block.
fn mm_group(j: u32) -> u32 {
    return (j * 32u) / GROUP;
}

// f16 scale number i of super-block sb's meta bytes.
fn mm_half_scale(sb: u32, i: u32) -> f32 {
    return half_at(p.meta_offset * 2u + sb * (MB / 2u) + i);
}

// Meta byte b of super-block sb.
fn mm_meta_byte(sb: u32, b: u32) -> u32 {
    let i = sb * MB + b;
    return (word(p.meta_offset + i / 4u) >> ((i % 4u) * 8u)) & 0xFFu;
}

// Eight 4-bit codes of a word (element k at bits 4k) decoded as E2M1 times 2^-14: each
// code is placed in an f16 as sign | exponent | mantissa, which scales every E2M1 value,
// subnormals included, by exactly 2^-14. Callers multiply by 16384.
struct V8 {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

fn e2m1_pair(n: u32) -> vec2<f32> {
    return unpack2x16float(((n & 0x00070007u) << 9u) | ((n & 0x00080008u) << 12u));
}

fn e2m1x8(v: u32) -> V8 {
    let a = e2m1_pair(v);
    let b = e2m1_pair(v >> 4u);
    let c = e2m1_pair(v >> 8u);
    let d = e2m1_pair(v >> 12u);
    return V8(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y));
}

// Four E4M3 bytes of a word (low byte first) times 2^-8, by the same f16 placement.
fn e4m3_pair(n: u32) -> vec2<f32> {
    return unpack2x16float(((n & 0x007F007Fu) << 7u) | ((n & 0x00800080u) << 8u));
}

fn e4m3x4(v: u32) -> vec4<f32> {
    let a = e4m3_pair(v);
    let b = e4m3_pair(v >> 8u);
    return vec4<f32>(a.x, b.x, a.y, b.y);
}

// Eight 4-bit codes of a word (element k at bits 4k) as floats 1 + n / 16.
fn nib8(v: u32) -> V8 {
    let m = vec4<u32>(0x00780000u);
    let one = vec4<u32>(0x3F800000u);
    let lo = (vec4<u32>(v << 19u, v << 15u, v << 11u, v << 7u) & m) | one;
    let hi = (vec4<u32>(v << 3u, v >> 1u, v >> 5u, v >> 9u) & m) | one;
    return V8(bitcast<vec4<f32>>(lo), bitcast<vec4<f32>>(hi));
}

// Sixteen 2-bit codes of a word (element k at bits 2k), four from element 4q, as floats
// 1 + c / 4.
fn crumb4(v: u32, q: u32) -> vec4<f32> {
    let s = v >> (8u * q);
    let b = vec4<u32>(s << 21u, s << 19u, s << 17u, s << 15u) & vec4<u32>(0x00600000u);
    return bitcast<vec4<f32>>(b | vec4<u32>(0x3F800000u));
}

// Bits 4q .. 4q + 3 of a word as floats 1 + bit / 2.
fn bit4(v: u32, q: u32) -> vec4<f32> {
    let s = v >> (4u * q);
    let b = vec4<u32>(s << 22u, s << 21u, s << 20u, s << 19u) & vec4<u32>(0x00400000u);
    return bitcast<vec4<f32>>(b | vec4<u32>(0x3F800000u));
}
