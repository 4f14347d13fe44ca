// attention body, shared by attn_paged and attn_split: one (query head, query token) per
// workgroup against a paged K/V cache, with an online softmax over tiles of WG keys
// (`attend` over a range of key positions leaves the unnormalised output in `acc`).
// seqs[meta_offset + 2j] = the query's absolute position, seqs[.. + 1] = the word index in
// meta of its sequence's block table; the key at position t lives in slot
// table[t / 16] · 16 + t % 16, head row slot · n_kv_heads + kv_head of kc/vc (u32 words
// of the cache dtype in bits 30-31 of `window`, kv_codes.wgsl: f16 pairs, f32 bits, or a
// scale word and byte codes per row, dequantized as they load). Keys t ≤ pos and, with a
// window w > 0 (low 30 bits), t > pos − w. Query j's heads start at
// q_offset + j · q_stride. head_dim ≤ MAX_HD and even; n_heads and n_kv_heads < 65536.
// `extra` is the output offset (attn_paged) or the keys per split (attn_split).
// Launchers: src/ops/attention.rs, src/ops/attention_split.rs.
struct Params {
    heads: u32, // n_heads | n_kv_heads << 16
    q_stride: u32,
    head_dim: u32,
    scale: f32,
    window: u32,
    meta_offset: u32,
    extra: u32,
    q_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
@group(0) @binding(4) var<storage, read> seqs: array<u32>;

// 128 threads: decode runs one workgroup per head, so wider tiles mean more loads in flight.
const WG: u32 = 128u;
const BLOCK: u32 = 16u;
const MAX_HD: u32 = 256u;
const DPT: u32 = MAX_HD / WG;

var<workgroup> qs: array<f32, MAX_HD>;
var<workgroup> sc: array<f32, WG>;
// First K/V value of each key in the tile: the V pass reads it here instead of chasing the
// block table again (two dependent DRAM loads per key made decode attention latency-bound).
var<workgroup> kbase: array<u32, WG>;

fn kv_dtype() -> u32 {
    return p.window >> 30u;
}

// A head row starts at `base` (float caches: its first value's index; quantized: its
// scale word). Values d and d + 1 (d even) of a K row, unscaled.
fn pair_k(base: u32, d: u32) -> vec2<f32> {
    let dt = kv_dtype();
    if (dt == KV_F16) {
        return unpack2x16float(kc[(base + d) / 2u]);
    }
    if (dt == KV_F32) {
        return vec2<f32>(bitcast<f32>(kc[base + d]), bitcast<f32>(kc[base + d + 1u]));
    }
    return kvq_decode2(kc[base + 1u + d / 4u] >> (8u * (d & 3u)), dt);
}

// Value d of a V row, unscaled.
fn val_v(base: u32, d: u32) -> f32 {
    let dt = kv_dtype();
    if (dt == KV_F16) {
        return unpack2x16float(vc[(base + d) / 2u])[(base + d) & 1u];
    }
    if (dt == KV_F32) {
        return bitcast<f32>(vc[base + d]);
    }
    return kvq_decode((vc[base + 1u + d / 4u] >> (8u * (d & 3u))) & 0xFFu, dt);
}

// The row scales (1 for float caches).
fn scale_k(base: u32) -> f32 {
    if (kv_dtype() >= KV_INT8) {
        return bitcast<f32>(kc[base]);
    }
    return 1.0;
}

fn scale_v(base: u32) -> f32 {
    if (kv_dtype() >= KV_INT8) {
        return bitcast<f32>(vc[base]);
    }
    return 1.0;
}

// Start of key position t's row for kv head kvh.
fn key_base(table: u32, t: u32, kvh: u32) -> u32 {
    let slot = seqs[table + t / BLOCK] * BLOCK + t % BLOCK;
    let row = slot * (p.heads >> 16u) + kvh;
    if (kv_dtype() >= KV_INT8) {
        return row * kvq_row_words(p.head_dim);
    }
    return row * p.head_dim;
}

var<private> acc: array<f32, DPT>;

// Key positions [lo, pos + 1) query token j attends to (window: the last w of them).
fn key_range(j: u32) -> vec2<u32> {
    let window = p.window & 0x3FFFFFFFu;
    let pos = seqs[p.meta_offset + 2u * j];
    var lo = 0u;
    if (window > 0u && pos + 1u > window) {
        lo = pos + 1u - window;
    }
    return vec2<u32>(lo, pos + 1u);
}

// Online softmax of head h of query token j over key positions [k0, k1): returns (max
// score, Σ exp(score − max)) and leaves Σ exp(score − max) · v in `acc` (dims lid + k · WG).
fn attend(lid: u32, h: u32, j: u32, k0: u32, k1: u32) -> vec2<f32> {
    let hd = p.head_dim;
    let n_heads = p.heads & 0xFFFFu;
    let kvh = h / (n_heads / (p.heads >> 16u));
    let table = seqs[p.meta_offset + 2u * j + 1u];
    let qb = p.q_offset + j * p.q_stride + h * hd;
    for (var d = lid; d < hd; d += WG) {
        qs[d] = q[qb + d];
    }
    workgroupBarrier();
    var m = -3.0e38;
    var l = 0.0;
    for (var k = 0u; k < DPT; k++) {
        acc[k] = 0.0;
    }
    for (var t0 = k0; t0 < k1; t0 += WG) {
        var s = -3.0e38;
        var kb = 0u;
        if (t0 + lid < k1) {
            kb = key_base(table, t0 + lid, kvh);
            // Eight dims per step in four independent chains: the key row's loads issue
            // together instead of one latency-bound load per step.
            var c0 = 0.0;
            var c1 = 0.0;
            var c2 = 0.0;
            var c3 = 0.0;
            var d = 0u;
            for (; d + 8u <= hd; d += 8u) {
                let k0 = pair_k(kb, d);
                let k1 = pair_k(kb, d + 2u);
                let k2 = pair_k(kb, d + 4u);
                let k3 = pair_k(kb, d + 6u);
                c0 = fma(qs[d], k0.x, fma(qs[d + 1u], k0.y, c0));
                c1 = fma(qs[d + 2u], k1.x, fma(qs[d + 3u], k1.y, c1));
                c2 = fma(qs[d + 4u], k2.x, fma(qs[d + 5u], k2.y, c2));
                c3 = fma(qs[d + 6u], k3.x, fma(qs[d + 7u], k3.y, c3));
            }
            for (; d < hd; d += 2u) {
                let kv = pair_k(kb, d);
                c0 = fma(qs[d], kv.x, fma(qs[d + 1u], kv.y, c0));
            }
            s = ((c0 + c1) + (c2 + c3)) * (p.scale * scale_k(kb));
        }
        sc[lid] = s;
        kbase[lid] = kb;
        workgroupBarrier();
        let cnt = min(WG, k1 - t0);
        var mt = m;
        for (var i = 0u; i < cnt; i++) {
            mt = max(mt, sc[i]);
        }
        let alpha = exp(m - mt);
        l *= alpha;
        for (var k = 0u; k < DPT; k++) {
            acc[k] *= alpha;
        }
        // Four keys per iteration: their V loads are independent and issue together.
        var i = 0u;
        for (; i + 4u <= cnt; i += 4u) {
            let p0 = exp(sc[i] - mt);
            let p1 = exp(sc[i + 1u] - mt);
            let p2 = exp(sc[i + 2u] - mt);
            let p3 = exp(sc[i + 3u] - mt);
            l += (p0 + p1) + (p2 + p3);
            let b0 = kbase[i];
            let b1 = kbase[i + 1u];
            let b2 = kbase[i + 2u];
            let b3 = kbase[i + 3u];
            // Quantized V: the row scale rides on the softmax weight.
            let w0 = p0 * scale_v(b0);
            let w1 = p1 * scale_v(b1);
            let w2 = p2 * scale_v(b2);
            let w3 = p3 * scale_v(b3);
            for (var k = 0u; k < DPT; k++) {
                let d = lid + k * WG;
                if (d < hd) {
                    let v0 = val_v(b0, d);
                    let v1 = val_v(b1, d);
                    let v2 = val_v(b2, d);
                    let v3 = val_v(b3, d);
                    acc[k] = fma(w3, v3, fma(w2, v2, fma(w1, v1, fma(w0, v0, acc[k]))));
                }
            }
        }
        for (; i < cnt; i++) {
            let pw = exp(sc[i] - mt);
            l += pw;
            let vb = kbase[i];
            let wv = pw * scale_v(vb);
            for (var k = 0u; k < DPT; k++) {
                let d = lid + k * WG;
                if (d < hd) {
                    acc[k] = fma(wv, val_v(vb, d), acc[k]);
                }
            }
        }
        m = mt;
        workgroupBarrier();
    }
    return vec2<f32>(m, l);
}
