// Q4_1, split layout: per block 4 payload words (qs[16]) at word 4 * blk; word
// meta_offset + blk holds d (low half) and m (high half). Nibbles as Q4_0. y = q * d + m.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let dm = unpack2x16float(w[p.meta_offset + blk]);
    let b = blk * 4u;
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let q = w[b + i];
        r[i] = u8x4(q & 0x0F0F0F0Fu) * dm.x + dm.y;
        r[i + 4u] = u8x4((q >> 4u) & 0x0F0F0F0Fu) * dm.x + dm.y;
    }
    return r;
}
