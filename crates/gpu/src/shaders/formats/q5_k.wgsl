// Q5_K, raw layout (176-byte blocks = 11 aligned vec4s): vec4 0 = d,dmin and scales[12],
// vec4s 1..2 = qh[32], vec4s 3..10 = qs[128]. Sub-block j as Q4_K; the fifth bit of
// element l is bit j of qh[l]. y = d*sc*q - dmin*mn.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 11u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let sm = k_scale_min(h, j);
    let dl = dm.x * sm.x;
    let ml = dm.y * sm.y;
    let qh0 = w[base + 1u];
    let qh1 = w[base + 2u];
    let q0 = w[base + 3u + 2u * (j / 2u)];
    let q1 = w[base + 4u + 2u * (j / 2u)];
    let sh = 4u * (j % 2u);
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let hi0 = u8x4((qh0[i] >> j) & 0x01010101u) * 16.0;
        let hi1 = u8x4((qh1[i] >> j) & 0x01010101u) * 16.0;
        r[i] = (u8x4((q0[i] >> sh) & 0x0F0F0F0Fu) + hi0) * dl - ml;
        r[i + 4u] = (u8x4((q1[i] >> sh) & 0x0F0F0F0Fu) + hi1) * dl - ml;
    }
    return r;
}
