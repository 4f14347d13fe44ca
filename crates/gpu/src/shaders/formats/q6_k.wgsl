// Q6_K, split layout: per block 52 payload words at word 52 * blk: ql[128] (words 0..31),
// qh[64] (32..47), scales[16] i8 (48..51); the f16 d is half (meta_offset * 2 + blk).
// Unit u: h = (u % 8) / 4, k = u % 4; element l (0..31): low4 from ql[64h + 32(k&1) + l]
// shifted by 4(k>>1), high2 from qh[32h + l] shifted by 2k; q = low4 | high2 << 4 - 32;
// scale scales[8h + 2k + l / 16]. y = d * scale * q.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let h = (u % 8u) / 4u;
    let k = u % 4u;
    let base = blk * 52u;
    let d = half_at(p.meta_offset * 2u + blk);
    let s0 = d * sbyte_at(base + 48u, 8u * h + 2u * k);
    let s1 = d * sbyte_at(base + 48u, 8u * h + 2u * k + 1u);
    let ql = base + 16u * h + 8u * (k & 1u);
    let qh = base + 32u + 8u * h;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let lo = (w[ql + i] >> (4u * (k >> 1u))) & 0x0F0F0F0Fu;
        let hi = ((w[qh + i] >> (2u * k)) & 0x03030303u) << 4u;
        r[i] = (u8x4(lo | hi) - 32.0) * select(s1, s0, i < 4u);
    }
    return r;
}
