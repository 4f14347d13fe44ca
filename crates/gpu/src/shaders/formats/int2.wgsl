// int2[z]_g<GROUP>: 2-bit codes, element 4i + k at bits 2k of code byte i (unit codes:
// words 2 (sb * 8 + j) and + 1 of region 1, one half of a vec4). Codes decode as
// f = 1 + c / 4: dot(c, x) = 4 (dot(f, x) - sum(x)).
const BITS: u32 = 2u;

fn int2_words(row: u32, u: u32) -> vec2<u32> {
    let gu = row * (p.cols / 32u) + u;
    let v = w[gu / 2u];
    return select(v.xy, v.zw, (gu & 1u) == 1u);
}

fn load_unit(row: u32, u: u32) -> Unit {
    let q = int2_words(row, u);
    var c: Unit;
    for (var i = 0u; i < 4u; i++) {
        c[i] = (crumb4(q.x, i) - 1.0) * 4.0;
        c[i + 4u] = (crumb4(q.y, i) - 1.0) * 4.0;
    }
    return int_values(c, int_scale_zero(row, u));
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let q = int2_words(row, u);
    let lo = dot_lo(xu, crumb4(q.x, 0u), crumb4(q.x, 1u), crumb4(q.x, 2u), crumb4(q.x, 3u));
    let hi = dot_hi(xu, crumb4(q.y, 0u), crumb4(q.y, 1u), crumb4(q.y, 2u), crumb4(q.y, 3u));
    let sz = int_scale_zero(row, u);
    return sz.x * (4.0 * ((lo + hi) - xu.sum) - sz.y * xu.sum);
}
