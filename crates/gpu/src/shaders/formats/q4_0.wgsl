// Q4_0, split layout: block blk's qs[16] is vec4 blk of the payload region; its f16 scale d
// is half (meta_offset * 2 + blk). Byte j: element j low nibble, j + 16 high nibble.
// y = (q - 8) * d.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q = w[blk];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        r[i] = (u8x4(q[i] & 0x0F0F0F0Fu) - 8.0) * d;
        r[i + 4u] = (u8x4((q[i] >> 4u) & 0x0F0F0F0Fu) - 8.0) * d;
    }
    return r;
}

// GEMV: dot of row `row`'s unit u with xu: with f = 1 + q / 16,
// dot(q - 8, x) = 16 dot(f, x) - 24 sum(x).
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q = w[blk];
    let lo = dot_lo(xu, nib_lo(q.x), nib_lo(q.y), nib_lo(q.z), nib_lo(q.w));
    let hi = dot_hi(xu, nib_hi(q.x), nib_hi(q.y), nib_hi(q.z), nib_hi(q.w));
    return d * (16.0 * (lo + hi) - 24.0 * xu.sum);
}

// Dp4a kernels: the unit's nibbles as i8 codes (byte j: element j low nibble, j + 16
// high); y = d (q - 8), so ab = (d, 8 d).
fn unit_q8(row: u32, u: u32) -> WQ8 {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q = w[blk];
    let m = vec4<u32>(0x0F0F0F0Fu);
    return WQ8(q & m, (q >> vec4<u32>(4u)) & m, vec2<f32>(d, 8.0 * d));
}

// Dp4a GEMV: codes times the unit's 8-bit activations (xl: elements 0..15, xh: 16..31;
// xd = (d, d sum q)).
fn dot_unit_q8(row: u32, u: u32, xl: vec4<u32>, xh: vec4<u32>, xd: vec2<f32>) -> f32 {
    return dot_q8(unit_q8(row, u), xl, xh, xd);
}

// The Dp4a GEMV takes this format's units one at a time (see q4_k.wgsl for pairs).
const PAIR_Q8: bool = false;

fn dot_pair_q8(row: u32, u: u32, xa: array<vec4<u32>, 2>, da: vec2<f32>,
    xb: array<vec4<u32>, 2>, db: vec2<f32>) -> f32 {
    return dot_unit_q8(row, u, xa[0], xa[1], da) + dot_unit_q8(row, u + 1u, xb[0], xb[1], db);
}
