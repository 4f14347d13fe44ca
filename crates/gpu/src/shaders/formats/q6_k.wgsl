// Q6_K, split layout: per block 13 payload vec4s at vec4 13 * blk: ql[128] (vec4s 0..7),
// qh[64] (8..11), scales[16] i8 (12); the f16 d is half (meta_offset * 2 + blk).
// Unit u: h = (u % 8) / 4, k = u % 4; element l (0..31): low4 from ql[64h + 32(k&1) + l]
// shifted by 4(k>>1), high2 from qh[32h + l] shifted by 2k; q = low4 | high2 << 4 - 32;
// scale scales[8h + 2k + l / 16]. y = d * scale * q.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let h = (u % 8u) / 4u;
    let k = u % 4u;
    let base = blk * 13u;
    let d = half_at(p.meta_offset * 2u + blk);
    let sc = w[base + 12u];
    let s0 = d * vsbyte(sc, 8u * h + 2u * k);
    let s1 = d * vsbyte(sc, 8u * h + 2u * k + 1u);
    let l0 = w[base + 4u * h + 2u * (k & 1u)];
    let l1 = w[base + 4u * h + 2u * (k & 1u) + 1u];
    let h0 = w[base + 8u + 2u * h];
    let h1 = w[base + 9u + 2u * h];
    let ls = 4u * (k >> 1u);
    let hs = 2u * k;
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let a = ((l0[i] >> ls) & 0x0F0F0F0Fu) | (((h0[i] >> hs) & 0x03030303u) << 4u);
        let b = ((l1[i] >> ls) & 0x0F0F0F0Fu) | (((h1[i] >> hs) & 0x03030303u) << 4u);
        r[i] = (u8x4(a) - 32.0) * s0;
        r[i + 4u] = (u8x4(b) - 32.0) * s1;
    }
    return r;
}

// GEMV: 4 elements' signed 6-bit values from low nibbles l >> ls and high pairs h >> hs.
fn q6_k_g(l: u32, ls: u32, h: u32, hs: u32) -> vec4<f32> {
    return u8x4_minus(((l >> ls) & 0x0F0F0F0Fu) | (((h >> hs) & 0x03030303u) << 4u), 32.0);
}

// GEMV: dot of row `row`'s unit u with xu.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 256u) + u / 8u;
    let h = (u % 8u) / 4u;
    let k = u % 4u;
    let base = blk * 13u;
    let d = half_at(p.meta_offset * 2u + blk);
    let sc = w[base + 12u];
    let s0 = d * vsbyte(sc, 8u * h + 2u * k);
    let s1 = d * vsbyte(sc, 8u * h + 2u * k + 1u);
    let l0 = w[base + 4u * h + 2u * (k & 1u)];
    let l1 = w[base + 4u * h + 2u * (k & 1u) + 1u];
    let h0 = w[base + 8u + 2u * h];
    let h1 = w[base + 9u + 2u * h];
    let ls = 4u * (k >> 1u);
    let hs = 2u * k;
    let lo = dot_lo(xu, q6_k_g(l0.x, ls, h0.x, hs), q6_k_g(l0.y, ls, h0.y, hs),
        q6_k_g(l0.z, ls, h0.z, hs), q6_k_g(l0.w, ls, h0.w, hs));
    let hi = dot_hi(xu, q6_k_g(l1.x, ls, h1.x, hs), q6_k_g(l1.y, ls, h1.y, hs),
        q6_k_g(l1.z, ls, h1.z, hs), q6_k_g(l1.w, ls, h1.w, hs));
    return s0 * lo + s1 * hi;
}
