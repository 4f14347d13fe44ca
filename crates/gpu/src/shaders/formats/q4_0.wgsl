// Q4_0, split layout: per block 4 payload words (qs[16]) at word 4 * blk; the f16 scale d of
// block blk is half (meta_offset * 2 + blk). Byte j: element j low nibble, j + 16 high nibble.
// y = (q - 8) * d.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let b = blk * 4u;
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let q = w[b + i];
        r[i] = (u8x4(q & 0x0F0F0F0Fu) - 8.0) * d;
        r[i + 4u] = (u8x4((q >> 4u) & 0x0F0F0F0Fu) - 8.0) * d;
    }
    return r;
}
