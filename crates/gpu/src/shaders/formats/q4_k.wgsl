// Q4_K, raw layout (144-byte blocks are word aligned): 36 words per block: d,dmin (f16 pair),
// scales[12], qs[128]. Unit u = sub-block u % 8 of block u / 8; sub-block j uses qs bytes
// 32 * (j / 2) .. + 32, low nibbles for even j, high for odd. y = d*sc*q - dmin*mn.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 36u;
    let dm = unpack2x16float(w[base]);
    let sm = k_scale_min(base, j);
    let dl = dm.x * sm.x;
    let ml = dm.y * sm.y;
    let qb = base + 4u + 8u * (j / 2u);
    let sh = 4u * (j % 2u);
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        r[i] = u8x4((w[qb + i] >> sh) & 0x0F0F0F0Fu) * dl - ml;
    }
    return r;
}
