// attn_paged: causal grouped-query attention of one (query head, query token) per
// workgroup against a paged K/V cache, with an online softmax over tiles of WG keys.
// seqs[meta_offset + 2j] = the query's absolute position, seqs[.. + 1] = the word index in
// meta of its sequence's block table; the key at position t lives in slot
// table[t / 16] · 16 + t % 16, row (slot · n_kv_heads + kv_head) · head_dim of kc/vc
// (u32 words: f16 pairs when the top bit of `window` is set, f32 bits otherwise). Keys
// t ≤ pos and, with a window w > 0 (low 31 bits), t > pos − w. Query j's heads start at
// q_offset + j · q_stride; its output at out_offset + j · n_heads · head_dim. head_dim ≤
// MAX_HD and even; n_heads and n_kv_heads < 65536. Launcher: src/ops/attention.rs.
struct Params {
    heads: u32, // n_heads | n_kv_heads << 16
    q_stride: u32,
    head_dim: u32,
    scale: f32,
    window: u32,
    meta_offset: u32,
    out_offset: u32,
    q_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
@group(0) @binding(4) var<storage, read> seqs: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

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

// Values e and e + 1 (e even) of a cache buffer.
fn is_f16() -> bool {
    return (p.window >> 31u) == 1u;
}

fn pair_k(e: u32) -> vec2<f32> {
    if (is_f16()) {
        return unpack2x16float(kc[e / 2u]);
    }
    return vec2<f32>(bitcast<f32>(kc[e]), bitcast<f32>(kc[e + 1u]));
}

fn val_v(e: u32) -> f32 {
    if (is_f16()) {
        return unpack2x16float(vc[e / 2u])[e & 1u];
    }
    return bitcast<f32>(vc[e]);
}

// First value of key position t's row for kv head kvh.
fn key_base(table: u32, t: u32, kvh: u32) -> u32 {
    let slot = seqs[table + t / BLOCK] * BLOCK + t % BLOCK;
    return (slot * (p.heads >> 16u) + kvh) * p.head_dim;
}

@compute @workgroup_size(WG)
fn attn_paged(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let h = wid.x;
    let j = wid.y;
    let hd = p.head_dim;
    let n_heads = p.heads & 0xFFFFu;
    let kvh = h / (n_heads / (p.heads >> 16u));
    let window = p.window & 0x7FFFFFFFu;
    let pos = seqs[p.meta_offset + 2u * j];
    let table = seqs[p.meta_offset + 2u * j + 1u];
    var lo = 0u;
    if (window > 0u && pos + 1u > window) {
        lo = pos + 1u - window;
    }
    let n_keys = pos + 1u - lo;
    let qb = p.q_offset + j * p.q_stride + h * hd;
    for (var d = lid; d < hd; d += WG) {
        qs[d] = q[qb + d];
    }
    workgroupBarrier();
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<f32, DPT>;
    for (var t0 = 0u; t0 < n_keys; t0 += WG) {
        var s = -3.0e38;
        var kb = 0u;
        if (t0 + lid < n_keys) {
            kb = key_base(table, lo + t0 + lid, kvh);
            var dot = 0.0;
            for (var d = 0u; d < hd; d += 2u) {
                let kv = pair_k(kb + d);
                dot = fma(qs[d], kv.x, fma(qs[d + 1u], kv.y, dot));
            }
            s = dot * p.scale;
        }
        sc[lid] = s;
        kbase[lid] = kb;
        workgroupBarrier();
        let cnt = min(WG, n_keys - t0);
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
            for (var k = 0u; k < DPT; k++) {
                let d = lid + k * WG;
                if (d < hd) {
                    let v0 = val_v(b0 + d);
                    let v1 = val_v(b1 + d);
                    let v2 = val_v(b2 + d);
                    let v3 = val_v(b3 + d);
                    acc[k] = fma(p3, v3, fma(p2, v2, fma(p1, v1, fma(p0, v0, acc[k]))));
                }
            }
        }
        for (; i < cnt; i++) {
            let pw = exp(sc[i] - mt);
            l += pw;
            let vb = kbase[i];
            for (var k = 0u; k < DPT; k++) {
                let d = lid + k * WG;
                if (d < hd) {
                    acc[k] = fma(pw, val_v(vb + d), acc[k]);
                }
            }
        }
        m = mt;
        workgroupBarrier();
    }
    let ob = p.out_offset + (j * n_heads + h) * hd;
    for (var k = 0u; k < DPT; k++) {
        let d = lid + k * WG;
        if (d < hd) {
            out[ob + d] = acc[k] / l;
        }
    }
}
