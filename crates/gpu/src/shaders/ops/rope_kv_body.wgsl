// rope_kv body, shared by rope_kv_normal and rope_kv_neox: RoPE of q and k fused with the
// paged KV-cache write, one dispatch per layer. Token t's source row holds its q heads at
// x_offset + t · stride, its k heads right after them, and its v heads at v_offset +
// t · stride (of buffer v). Roped q goes to q_out (t · n_heads · head_dim, contiguous, for
// attention); roped k and v go to slot slots[slot_offset + t] of kc / vc (u32 words: f16
// pairs when the top bit of `dims` is set, f32 bits otherwise). Each kernel file defines
// `pair(i)` (the two elements rotated by angle i) and `pair_of(e)` (the angle of element
// e, and 1 when e is the pair's second). cs holds per token `half` cosines then `half`
// sines; elements past 2 · half pass through. One thread per adjacent element pair of a
// q, k or v head. Launcher: src/ops/rope_kv.rs.
struct Params {
    n_tokens: u32,
    heads: u32,  // n_heads | n_kv_heads << 16
    dims: u32,   // head_dim | half << 12 | is_f16 << 31
    cs_offset: u32,
    x_offset: u32,
    v_offset: u32,
    stride: u32,
    slot_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> slots: array<u32>;
@group(0) @binding(5) var<storage, read_write> q_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> kc: array<u32>;
@group(0) @binding(7) var<storage, read_write> vc: array<u32>;

const WG: u32 = 64u;

fn head_dim() -> u32 {
    return p.dims & 0xFFFu;
}

fn half_rot() -> u32 {
    return (p.dims >> 12u) & 0x7FFFFu;
}

// Element e of the head starting at hb (source x), roped for token t.
fn roped(t: u32, hb: u32, e: u32) -> f32 {
    let half = half_rot();
    if (e >= 2u * half) {
        return x[hb + e];
    }
    let is = pair_of(e);
    let ab = pair(is.x);
    let a = x[hb + ab.x];
    let b = x[hb + ab.y];
    let c = cs[p.cs_offset + t * 2u * half + is.x];
    let s = cs[p.cs_offset + t * 2u * half + half + is.x];
    if (is.y == 0u) {
        return a * c - b * s;
    }
    return a * s + b * c;
}

fn store_cache(is_k: bool, at: u32, lo: f32, hi: f32) {
    if ((p.dims >> 31u) == 1u) {
        let w = pack2x16float(vec2<f32>(lo, hi));
        if (is_k) {
            kc[at / 2u] = w;
        } else {
            vc[at / 2u] = w;
        }
    } else if (is_k) {
        kc[at] = bitcast<u32>(lo);
        kc[at + 1u] = bitcast<u32>(hi);
    } else {
        vc[at] = bitcast<u32>(lo);
        vc[at + 1u] = bitcast<u32>(hi);
    }
}

fn rope_kv_run(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) {
    let g = (wid.x + wid.y * nwg.x) * WG + lid;
    let hd = head_dim();
    let n_heads = p.heads & 0xFFFFu;
    let n_kv = p.heads >> 16u;
    let pairs = hd / 2u;
    let per_token = (n_heads + 2u * n_kv) * pairs;
    if (g >= p.n_tokens * per_token) {
        return;
    }
    let t = g / per_token;
    let r = g % per_token;
    let head = r / pairs;
    let e = 2u * (r % pairs);
    let row = p.x_offset + t * p.stride;
    if (head < n_heads) {
        let hb = row + head * hd;
        let o = (t * n_heads + head) * hd + e;
        q_out[o] = roped(t, hb, e);
        q_out[o + 1u] = roped(t, hb, e + 1u);
        return;
    }
    let kvd = n_kv * hd;
    let slot = slots[p.slot_offset + t];
    if (head < n_heads + n_kv) {
        let kh = head - n_heads;
        let hb = row + n_heads * hd + kh * hd;
        let at = slot * kvd + kh * hd + e;
        store_cache(true, at, roped(t, hb, e), roped(t, hb, e + 1u));
        return;
    }
    let vh = head - n_heads - n_kv;
    let vb = p.v_offset + t * p.stride + vh * hd + e;
    let at = slot * kvd + vh * hd + e;
    store_cache(false, at, v[vb], v[vb + 1u]);
}
