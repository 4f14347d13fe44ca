// fp8: E4M3 codes, one byte per element (unit codes: vec4s 2 gu and 2 gu + 1 of region 1),
// an f32 scale per 256-element block (GROUP 256) in region 2. y = E4M3[c] * s.
fn fp8_scale(row: u32, u: u32) -> f32 {
    return bitcast<f32>(word(p.meta_offset + mm_group_index(row, u))) * 256.0;
}

fn load_unit(row: u32, u: u32) -> Unit {
    let s = fp8_scale(row, u);
    let gu = row * (p.cols / 32u) + u;
    let q0 = w[2u * gu];
    let q1 = w[2u * gu + 1u];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        r[i] = e4m3x4(q0[i]) * s;
        r[i + 4u] = e4m3x4(q1[i]) * s;
    }
    return r;
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let gu = row * (p.cols / 32u) + u;
    let q0 = w[2u * gu];
    let q1 = w[2u * gu + 1u];
    let lo = dot_lo(xu, e4m3x4(q0.x), e4m3x4(q0.y), e4m3x4(q0.z), e4m3x4(q0.w));
    let hi = dot_hi(xu, e4m3x4(q1.x), e4m3x4(q1.y), e4m3x4(q1.z), e4m3x4(q1.w));
    return fp8_scale(row, u) * (lo + hi);
}
