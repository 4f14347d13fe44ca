// Q8_0, split layout: block blk's qs[32] (i8) are vec4s 2 * blk and 2 * blk + 1 of the
// payload region; the f16 scale d is half (meta_offset * 2 + blk). y = q * d.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q0 = w[2u * blk];
    let q1 = w[2u * blk + 1u];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        r[i] = i8x4(q0[i]) * d;
        r[i + 4u] = i8x4(q1[i]) * d;
    }
    return r;
}

// GEMV: dot of row `row`'s unit u with xu.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q0 = w[2u * blk];
    let q1 = w[2u * blk + 1u];
    let lo = dot_lo(xu, i8x4(q0.x), i8x4(q0.y), i8x4(q0.z), i8x4(q0.w));
    let hi = dot_hi(xu, i8x4(q1.x), i8x4(q1.y), i8x4(q1.z), i8x4(q1.w));
    return d * (lo + hi);
}
