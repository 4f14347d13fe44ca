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
    let lo = dot_lo(xu, u8x4(q.x & m), u8x4(q.y & m), u8x4(q.z & m), u8x4(q.w & m));
    let s = vec4<u32>(4u);
    let qh = (q >> s) & vec4<u32>(m);
    let hi = dot_hi(xu, u8x4(qh.x), u8x4(qh.y), u8x4(qh.z), u8x4(qh.w));
    return d * ((lo + hi) - 8.0 * xu.sum);
}
