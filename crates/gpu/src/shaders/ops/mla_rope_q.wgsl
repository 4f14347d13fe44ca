// mla_rope_q: RoPE of one query's rope part, shared by attn_mla and mla_q_pack. The kernel
// including it names its params `p` (with `rope` = rd | neox << 31) and binds `q_pe` and `cs`.
// Rotated value i of the rope part whose unrotated values start at q_pe[qb], angles at cs[cb].
fn rope_q(qb: u32, cb: u32, i: u32) -> f32 {
    let half = (p.rope & 0x7FFFFFFFu) / 2u;
    var k = i / 2u;
    var ia = qb + 2u * k;
    var ib = ia + 1u;
    var second = (i & 1u) == 1u;
    if ((p.rope >> 31u) == 1u) {
        k = i % half;
        ia = qb + k;
        ib = ia + half;
        second = i >= half;
    }
    let a = q_pe[ia];
    let b = q_pe[ib];
    let c = cs[cb + k];
    let s = cs[cb + half + k];
    if (second) {
        return a * s + b * c;
    }
    return a * c - b * s;
}
