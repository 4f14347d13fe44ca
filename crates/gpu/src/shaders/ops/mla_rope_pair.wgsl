// mla_rope_pair: RoPE pair indexing of an MLA rope part, shared by the query side
// (mla_rope_q.wgsl: attn_mla, mla_q_pack) and the key side (mla_latent). `rope` is
// rd | neox << 31: half-split pairs (i, i + rd / 2) when the top bit is set, else adjacent
// pairs (2k, 2k + 1).
struct RopePair {
    // Offsets of the pair's two values from the part's first value.
    ia: u32,
    ib: u32,
    // The angle's index in a cos ‖ sin row of rd / 2 each.
    k: u32,
    // Whether value i is the pair's second.
    second: bool,
}

fn rope_pair(rope: u32, i: u32) -> RopePair {
    let half = (rope & 0x7FFFFFFFu) / 2u;
    if ((rope >> 31u) == 1u) {
        let k = i % half;
        return RopePair(k, k + half, k, i >= half);
    }
    let k = i / 2u;
    return RopePair(2u * k, 2u * k + 1u, k, (i & 1u) == 1u);
}

// Value i of the pair (a, b) rotated by the angle with cosine c and sine s.
fn rope_rotate(pr: RopePair, a: f32, b: f32, c: f32, s: f32) -> f32 {
    if (pr.second) {
        return a * s + b * c;
    }
    return a * c - b * s;
}
