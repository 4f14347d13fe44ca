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

// Dp4a kernels: the unit's i8 codes as they are; y = d q, so ab = (d, 0).
fn unit_q8(row: u32, u: u32) -> WQ8 {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    return WQ8(w[2u * blk], w[2u * blk + 1u], vec2<f32>(d, 0.0));
}

// Dp4a GEMV: i8 codes times the unit's 8-bit activations (xd = (d, d sum q)).
fn dot_unit_q8(row: u32, u: u32, xl: vec4<u32>, xh: vec4<u32>, xd: vec2<f32>) -> f32 {
    return dot_q8(unit_q8(row, u), xl, xh, xd);
}

// The Dp4a GEMV takes this format's units one at a time (see q4_k.wgsl for pairs).
const PAIR_Q8: bool = false;

fn dot_pair_q8(row: u32, u: u32, xa: array<vec4<u32>, 2>, da: vec2<f32>,
    xb: array<vec4<u32>, 2>, db: vec2<f32>) -> f32 {
    return dot_unit_q8(row, u, xa[0], xa[1], da) + dot_unit_q8(row, u + 1u, xb[0], xb[1], db);
}
