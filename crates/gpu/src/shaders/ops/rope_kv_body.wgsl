// rope_kv body, shared by rope_kv_normal and rope_kv_neox: RoPE of q and k fused with the
// paged KV-cache write, one dispatch per layer. Token t's source row holds its q heads at
// x_offset + t · stride, its k heads right after them, and its v heads at v_offset +
// t · stride (of buffer v). Roped q goes to q_out (t · n_heads · head_dim, contiguous, for
// attention); roped k and v go to slot slots[slot_offset + t] of kc / vc (u32 words of the
// cache dtype in bits 30-31 of `dims`, kv_codes.wgsl: f16 pairs, f32 bits, or per head row
// a scale word and byte codes). Each kernel file defines
// `pair(i)` (the two elements rotated by angle i) and `pair_of(e)` (the angle of element
// e, and 1 when e is the pair's second). cs holds per token `half` cosines then `half`
// sines; elements past 2 · half pass through. One thread per adjacent element pair of a
// q, k or v head; quantized caches take one thread per k or v head row instead (the
// row's scale needs all of it). Launcher: src/ops/rope_kv.rs.
struct Params {
    n_tokens: u32,
    heads: u32,  // n_heads | n_kv_heads << 16
    dims: u32,   // head_dim | half << 12 | dtype << 30
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
    return (p.dims >> 12u) & 0x3FFFFu;
}

fn kv_dtype() -> u32 {
    return p.dims >> 30u;
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
    if (kv_dtype() == KV_F16) {
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

fn put(is_v: bool, i: u32, w: u32) {
    if (is_v) {
        vc[i] = w;
    } else {
        kc[i] = w;
    }
}

// Value e of k head row hb (roped) or v head row vb of token t.
fn kv_val(is_v: bool, t: u32, hb: u32, e: u32) -> f32 {
    if (is_v) {
        return v[hb + e];
    }
    return roped(t, hb, e);
}

// Quantized k (h < n_kv) or v (h − n_kv) head row of token t: scale word and codes.
fn store_quant_row(t: u32, h: u32) {
    let hd = head_dim();
    let n_heads = p.heads & 0xFFFFu;
    let n_kv = p.heads >> 16u;
    let is_v = h >= n_kv;
    let kh = h % n_kv;
    var hb = p.x_offset + t * p.stride + n_heads * hd + kh * hd;
    if (is_v) {
        hb = p.v_offset + t * p.stride + kh * hd;
    }
    var amax = 0.0;
    for (var e = 0u; e < hd; e++) {
        amax = max(amax, abs(kv_val(is_v, t, hb, e)));
    }
    let dt = kv_dtype();
    let si = kvq_scale(amax, dt);
    let rw = kvq_row_words(hd);
    let at = (slots[p.slot_offset + t] * n_kv + kh) * rw;
    put(is_v, at, bitcast<u32>(si.x));
    for (var w = 0u; w + 1u < rw; w++) {
        var word = 0u;
        for (var b = 0u; b < 4u; b++) {
            let e = 4u * w + b;
            if (e < hd) {
                word |= kvq_encode(kv_val(is_v, t, hb, e) * si.y, dt) << (8u * b);
            }
        }
        put(is_v, at + 1u + w, word);
    }
}

fn rope_kv_run(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) {
    let g = (wid.x + wid.y * nwg.x) * WG + lid;
    let hd = head_dim();
    let n_heads = p.heads & 0xFFFFu;
    let n_kv = p.heads >> 16u;
    let pairs = hd / 2u;
    let quant = kv_dtype() >= KV_INT8;
    var per_token = (n_heads + 2u * n_kv) * pairs;
    if (quant) {
        per_token = n_heads * pairs + 2u * n_kv;
    }
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
    if (quant) {
        store_quant_row(t, r - n_heads * pairs);
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
