// Q5_1, split layout: per block 5 payload words at word 5 * blk: qh (u32), then qs[16] (as
// Q5_0); word meta_offset + blk holds d (low half) and m (high half). Element j (0..15):
// low nibble of byte j, fifth bit = bit j of qh; element j + 16: high nibble, bit j + 16.
// y = q * d + m. (20-byte payloads are not 16-byte aligned: scalar word loads.)
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 32u) + u;
    let dm = unpack2x16float(word(p.meta_offset + blk));
    let b = blk * 5u;
    let qh = vec4<u32>(word(b));
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let q = word(b + 1u + i);
        let lo = (qh >> (vec4<u32>(0u, 1u, 2u, 3u) + 4u * i)) & vec4<u32>(1u);
        let hi = (qh >> (vec4<u32>(16u, 17u, 18u, 19u) + 4u * i)) & vec4<u32>(1u);
        r[i] = (u8x4(q & 0x0F0F0F0Fu) + vec4<f32>(lo * 16u)) * dm.x + dm.y;
        r[i + 4u] = (u8x4((q >> 4u) & 0x0F0F0F0Fu) + vec4<f32>(hi * 16u)) * dm.x + dm.y;
    }
    return r;
}

// GEMV: the 5-bit values of 4 elements whose nibbles are the low (`sh` = 0) or high
// (`sh` = 4) halves of q and whose fifth bits start at bit `b` of qh.
fn q5_1_g(q: u32, sh: u32, qh: u32, b: u32) -> vec4<f32> {
    let h = qh >> b;
    let hb = ((h & 1u) << 4u) | ((h & 2u) << 11u) | ((h & 4u) << 18u) | ((h & 8u) << 25u);
    return u8x4_minus(((q >> sh) & 0x0F0F0F0Fu) | hb, 0.0);
}

// GEMV: dot of row `row`'s unit u with xu.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 32u) + u;
    let dm = unpack2x16float(word(p.meta_offset + blk));
    let b = blk * 5u;
    let qh = word(b);
    let q0 = word(b + 1u);
    let q1 = word(b + 2u);
    let q2 = word(b + 3u);
    let q3 = word(b + 4u);
    let lo = dot_lo(xu, q5_1_g(q0, 0u, qh, 0u), q5_1_g(q1, 0u, qh, 4u),
        q5_1_g(q2, 0u, qh, 8u), q5_1_g(q3, 0u, qh, 12u));
    let hi = dot_hi(xu, q5_1_g(q0, 4u, qh, 16u), q5_1_g(q1, 4u, qh, 20u),
        q5_1_g(q2, 4u, qh, 24u), q5_1_g(q3, 4u, qh, 28u));
    return dm.x * (lo + hi) + dm.y * xu.sum;
}
