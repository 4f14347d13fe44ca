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

// GEMV: dot of row `row`'s unit u with xu (no Unit array: registers only).
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let q = w[blk];
    let m = 0x0F0F0F0Fu;
    let lo = dot_lo(xu, u8x4_minus(q.x & m, 8.0), u8x4_minus(q.y & m, 8.0),
        u8x4_minus(q.z & m, 8.0), u8x4_minus(q.w & m, 8.0));
    let qh = (q >> vec4<u32>(4u)) & vec4<u32>(m);
    let hi = dot_hi(xu, u8x4_minus(qh.x, 8.0), u8x4_minus(qh.y, 8.0), u8x4_minus(qh.z, 8.0),
        u8x4_minus(qh.w, 8.0));
    return d * (lo + hi);
}
