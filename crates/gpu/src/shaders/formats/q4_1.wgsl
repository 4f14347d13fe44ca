// Q4_1, split layout: block blk's qs[16] is vec4 blk of the payload region; word
// meta_offset + blk holds d (low half) and m (high half). Nibbles as Q4_0. y = q * d + m.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let dm = unpack2x16float(word(p.meta_offset + blk));
    let q = w[blk];
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        r[i] = u8x4(q[i] & 0x0F0F0F0Fu) * dm.x + dm.y;
        r[i + 4u] = u8x4((q[i] >> 4u) & 0x0F0F0F0Fu) * dm.x + dm.y;
    }
    return r;
}

// GEMV: dot of row `row`'s unit u with xu.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let dm = unpack2x16float(word(p.meta_offset + blk));
    let q = w[blk];
    let m = 0x0F0F0F0Fu;
    let lo = dot_lo(xu, u8x4(q.x & m), u8x4(q.y & m), u8x4(q.z & m), u8x4(q.w & m));
    let qh = (q >> vec4<u32>(4u)) & vec4<u32>(m);
    let hi = dot_hi(xu, u8x4(qh.x), u8x4(qh.y), u8x4(qh.z), u8x4(qh.w));
    return dm.x * (lo + hi) + dm.y * xu.sum;
}
