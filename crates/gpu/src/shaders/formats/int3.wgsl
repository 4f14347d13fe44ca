// int3[z]_g<GROUP>: 3-bit codes, three words per unit gu (words 3 gu ..): the low 2 bits
// packed as int2 (two words), then the high bits (element e at bit e). c = lo + 4 hi.
const BITS: u32 = 3u;

fn int3_words(row: u32, u: u32) -> vec3<u32> {
    let base = (row * (p.cols / 32u) + u) * 3u;
    return vec3<u32>(word(base), word(base + 1u), word(base + 2u));
}

fn int3_codes(q: vec3<u32>, i: u32) -> vec4<f32> {
    let lo = select(crumb4(q.x, i), crumb4(q.y, i - 4u), i >= 4u);
    return (lo - 1.0) * 4.0 + (bit4(q.z, i) - 1.0) * 8.0;
}

fn load_unit(row: u32, u: u32) -> Unit {
    let q = int3_words(row, u);
    var c: Unit;
    for (var i = 0u; i < 8u; i++) {
        c[i] = int3_codes(q, i);
    }
    return int_values(c, int_scale_zero(row, u));
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let q = int3_words(row, u);
    let lo = dot_lo(xu, crumb4(q.x, 0u), crumb4(q.x, 1u), crumb4(q.x, 2u), crumb4(q.x, 3u))
        + dot_hi(xu, crumb4(q.y, 0u), crumb4(q.y, 1u), crumb4(q.y, 2u), crumb4(q.y, 3u));
    let hi = dot_lo(xu, bit4(q.z, 0u), bit4(q.z, 1u), bit4(q.z, 2u), bit4(q.z, 3u))
        + dot_hi(xu, bit4(q.z, 4u), bit4(q.z, 5u), bit4(q.z, 6u), bit4(q.z, 7u));
    let sz = int_scale_zero(row, u);
    return sz.x * (4.0 * (lo - xu.sum) + 8.0 * (hi - xu.sum) - sz.y * xu.sum);
}
