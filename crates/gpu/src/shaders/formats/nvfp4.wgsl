// nvfp4: E2M1 codes as fp4, a UE4M3 scale byte per 16 elements (region 2; unit u's two
// are bytes 2 (row * cols / 32 + u) and + 1) and the f32 tensor scale (region 3).
// y = E2M1[c] * ue4m3(s) * g.
fn nv_scales(row: u32, u: u32) -> vec2<f32> {
    let i = mm_group_index(row, u);
    let pair = (word(p.meta_offset + i / 4u) >> (8u * (i % 4u))) & 0xFFFFu;
    let g = bitcast<f32>(word(mm_third()));
    // E2M1 (2^-14) and E4M3 (2^-8) placements: 2^22.
    return e4m3_pair(pair | ((pair & 0xFF00u) << 8u)) * (g * 4194304.0);
}

fn load_unit(row: u32, u: u32) -> Unit {
    let s = nv_scales(row, u);
    let q = w[row * (p.cols / 32u) + u];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let e = e2m1x8(q[i]);
        let si = select(s.x, s.y, i >= 2u);
        r[2u * i] = e.lo * si;
        r[2u * i + 1u] = e.hi * si;
    }
    return r;
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let s = nv_scales(row, u);
    let q = w[row * (p.cols / 32u) + u];
    let a = e2m1x8(q.x);
    let b = e2m1x8(q.y);
    let c = e2m1x8(q.z);
    let d = e2m1x8(q.w);
    return s.x * dot_lo(xu, a.lo, a.hi, b.lo, b.hi) + s.y * dot_hi(xu, c.lo, c.hi, d.lo, d.hi);
}
