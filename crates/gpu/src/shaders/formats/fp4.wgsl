// fp4_g<GROUP>: E2M1 codes (element 8i + k at nibble k of code word i; unit codes: vec4
// row * units + u of region 1), an f16 scale per GROUP elements. y = E2M1[c] * s.
fn fp4_scale(row: u32, u: u32) -> f32 {
    return mm_half_scale(mm_group_index(row, u)) * 16384.0;
}

fn load_unit(row: u32, u: u32) -> Unit {
    let s = fp4_scale(row, u);
    let q = w[row * (p.cols / 32u) + u];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let e = e2m1x8(q[i]);
        r[2u * i] = e.lo * s;
        r[2u * i + 1u] = e.hi * s;
    }
    return r;
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let q = w[row * (p.cols / 32u) + u];
    let a = e2m1x8(q.x);
    let b = e2m1x8(q.y);
    let c = e2m1x8(q.z);
    let d = e2m1x8(q.w);
    return fp4_scale(row, u) * (dot_lo(xu, a.lo, a.hi, b.lo, b.hi)
        + dot_hi(xu, c.lo, c.hi, d.lo, d.hi));
}

// Dp4a gemv_multi: the unit's codes as i8 2 E2M1, each word's even elements, then its odd
// ones (act_q8 orders x the same way for this format); y = (s / 2) code.
fn unit_q8(row: u32, u: u32) -> WQ8 {
    let q = w[row * (p.cols / 32u) + u];
    let a = e2m1_i8(q.x);
    let b = e2m1_i8(q.y);
    let c = e2m1_i8(q.z);
    let d = e2m1_i8(q.w);
    let s = 0.5 * mm_half_scale(mm_group_index(row, u));
    return WQ8(vec4<u32>(a.x, a.y, b.x, b.y), vec4<u32>(c.x, c.y, d.x, d.y), vec2<f32>(s, 0.0));
}
