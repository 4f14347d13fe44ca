// mla_rope_q: RoPE of one query's rope part, shared by attn_mla and mla_q_pack (pairs:
// mla_rope_pair.wgsl). The kernel including it names its params `p` (with `rope` =
// rd | neox << 31) and binds `q_pe` and `cs`.
// Rotated value i of the rope part whose unrotated values start at q_pe[qb], angles at cs[cb].
fn rope_q(qb: u32, cb: u32, i: u32) -> f32 {
    let half = (p.rope & 0x7FFFFFFFu) / 2u;
    let pr = rope_pair(p.rope, i);
    return rope_rotate(pr, q_pe[qb + pr.ia], q_pe[qb + pr.ib], cs[cb + pr.k],
        cs[cb + half + pr.k]);
}
