// Q8_0, split layout: per block 8 payload words (qs[32], i8) at word 8 * blk; the f16 scale
// d is half (meta_offset * 2 + blk). y = q * d.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let d = half_at(p.meta_offset * 2u + blk);
    let b = blk * 8u;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        r[i] = i8x4(w[b + i]) * d;
    }
    return r;
}
