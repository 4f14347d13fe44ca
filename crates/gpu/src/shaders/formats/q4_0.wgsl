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

// Dp4a GEMV: codes times the unit's 8-bit activations (xl: elements 0..15, xh: 16..31;
// xd = (d, d sum q)). Byte j holds element j (low nibble) and j + 16 (high).
fn dot_unit_q8(row: u32, u: u32, xl: vec4<u32>, xh: vec4<u32>, xd: vec2<f32>) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q = w[blk];
    let m = vec4<u32>(0x0F0F0F0Fu);
    let lo = q & m;
    let hi = (q >> vec4<u32>(4u)) & m;
    let s = (dot4I8Packed(lo.x, xl.x) + dot4I8Packed(lo.y, xl.y))
        + (dot4I8Packed(lo.z, xl.z) + dot4I8Packed(lo.w, xl.w))
        + (dot4I8Packed(hi.x, xh.x) + dot4I8Packed(hi.y, xh.y))
        + (dot4I8Packed(hi.z, xh.z) + dot4I8Packed(hi.w, xh.w));
    return d * (xd.x * f32(s) - 8.0 * xd.y);
}
