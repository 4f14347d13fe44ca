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

// GEMV: dot of row `row`'s unit u with xu (f = 1 + q / 16: dot(q, x) = 16 (dot(f, x) - sum)).
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let dm = unpack2x16float(word(p.meta_offset + blk));
    let q = w[blk];
    let lo = dot_lo(xu, nib_lo(q.x), nib_lo(q.y), nib_lo(q.z), nib_lo(q.w));
    let hi = dot_hi(xu, nib_hi(q.x), nib_hi(q.y), nib_hi(q.z), nib_hi(q.w));
    return dm.x * 16.0 * ((lo + hi) - xu.sum) + dm.y * xu.sum;
}
