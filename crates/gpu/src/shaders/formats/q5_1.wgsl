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
