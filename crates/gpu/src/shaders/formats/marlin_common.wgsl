// Shared by the metal-marlin formats (fp4_g*, nvfp4, fp8, int*), in the GPU unit layout
// (src/layout_marlin.rs): region 1 holds the codes of unit gu = row * units + u (32
// elements, BITS words); region 2, from word meta_offset, one scale per (row, group) of SB
// bytes; region 3, from the next word boundary, u8 zero points per (row, group) or nvfp4's
// f32 tensor scale. The registry defines GROUP (elements per scale) and SB per format.

fn mm_groups_per_row() -> u32 {
    return (p.cols + GROUP - 1u) / GROUP;
}

// Index of unit u's scale group among all (row, group) pairs of the chunk.
fn mm_group_index(row: u32, u: u32) -> u32 {
    return row * mm_groups_per_row() + (u * 32u) / GROUP;
}

// f16 scale number i of region 2.
fn mm_half_scale(i: u32) -> f32 {
    return half_at(p.meta_offset * 2u + i);
}

// First word of region 3.
fn mm_third() -> u32 {
    return p.meta_offset + (p.rows * mm_groups_per_row() * SB + 3u) / 4u;
}

// Byte i of region 3.
fn mm_third_byte(i: u32) -> u32 {
    return (word(mm_third() + i / 4u) >> ((i % 4u) * 8u)) & 0xFFu;
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
