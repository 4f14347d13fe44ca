// int8[z]_g<GROUP>: one unsigned byte per element (unit codes: vec4s 2 (sb * 8 + j) and
// + 1 of region 1).
const BITS: u32 = 8u;

fn load_unit(row: u32, u: u32) -> Unit {
    let gu = row * (p.cols / 32u) + u;
    let q0 = w[2u * gu];
    let q1 = w[2u * gu + 1u];
    var c: Unit;
    for (var i = 0u; i < 4u; i++) {
        c[i] = u8x4(q0[i]);
        c[i + 4u] = u8x4(q1[i]);
    }
    return int_values(c, int_scale_zero(row, u));
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let gu = row * (p.cols / 32u) + u;
    let q0 = w[2u * gu];
    let q1 = w[2u * gu + 1u];
    let lo = dot_lo(xu, u8x4(q0.x), u8x4(q0.y), u8x4(q0.z), u8x4(q0.w));
    let hi = dot_hi(xu, u8x4(q1.x), u8x4(q1.y), u8x4(q1.z), u8x4(q1.w));
    let sz = int_scale_zero(row, u);
    return sz.x * ((lo + hi) - sz.y * xu.sum);
}
