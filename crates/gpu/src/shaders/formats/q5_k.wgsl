// Q5_K, raw layout (176-byte blocks are word aligned): 44 words per block: d,dmin, scales[12],
// qh[32] (words 4..11), qs[128] (words 12..43). Sub-block j as Q4_K; the fifth bit of element
// l is bit j of qh[l]. y = d*sc*q - dmin*mn.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 44u;
    let dm = unpack2x16float(w[base]);
    let sm = k_scale_min(base, j);
    let dl = dm.x * sm.x;
    let ml = dm.y * sm.y;
    let qb = base + 12u + 8u * (j / 2u);
    let sh = 4u * (j % 2u);
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let hi = (w[base + 4u + i] >> j) & 0x01010101u;
        r[i] = (u8x4((w[qb + i] >> sh) & 0x0F0F0F0Fu) + u8x4(hi) * 16.0) * dl - ml;
    }
    return r;
}
