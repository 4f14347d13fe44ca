// GEMV output hook of gemv_norm_rope_kv: one token's q|k|v projection with RoPE (adjacent
// pairs, the "normal" mode) and the f16 KV-cache write folded in, so no rope_kv dispatch
// runs after it. Rows [0, qd) are q heads, roped into out; [qd, qd + kvd) k heads, roped
// into kc; [qd + kvd, qd + 2 kvd) v heads, into vc; at cache slot words[slot word]. The even
// row of each pair writes both values (one f16 word in the cache). The rope record sits at
// words[p.n_tokens ..] (the GEMV's token count is 1): qd, kvd, head_dim, half (rotated
// pairs per head; elements past 2 half pass through), the word index of the token's
// cos ‖ sin row in cs, and the word index of its slot. Launcher: src/ops/gemv_fused.rs.
@group(0) @binding(5) var<storage, read> cs: array<f32>;
@group(0) @binding(6) var<storage, read> words: array<u32>;
@group(0) @binding(7) var<storage, read_write> kc: array<u32>;
@group(0) @binding(8) var<storage, read_write> vc: array<u32>;

const OUT_PAIR: bool = true;
// Rows in their weight's order (out_swiglu pairs gate and up rows).
const OUT_GATE_UP: bool = false;

fn put_out(row: u32, v: f32, pair: f32) {
    let g = p.row_offset + row;
    if ((g & 1u) == 1u) {
        return;
    }
    let rec = p.n_tokens;
    let qd = words[rec];
    let kvd = words[rec + 1u];
    let hd = words[rec + 2u];
    let half = words[rec + 3u];
    var a = v;
    var b = pair;
    if (g < qd + kvd) {
        let e = select(g - qd, g, g < qd) % hd;
        if (e < 2u * half) {
            let i = e / 2u;
            let c = cs[words[rec + 4u] + i];
            let s = cs[words[rec + 4u] + half + i];
            a = v * c - pair * s;
            b = v * s + pair * c;
        }
    }
    if (g < qd) {
        out[p.out_offset + g] = a;
        out[p.out_offset + g + 1u] = b;
        return;
    }
    let slot = words[words[rec + 5u]];
    let w = pack2x16float(vec2<f32>(a, b));
    if (g < qd + kvd) {
        kc[(slot * kvd + g - qd) / 2u] = w;
    } else {
        vc[(slot * kvd + g - qd - kvd) / 2u] = w;
    }
}
