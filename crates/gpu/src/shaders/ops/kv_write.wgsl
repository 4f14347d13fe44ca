// kv_write: token t's K and V rows (row_len f32 values each, at k_offset + t · src_stride
// of k and v_offset + t · src_stride of v) go to slot slots[slot_offset + t] of the paged
// caches kc and vc (slot = block · 16 + position % 16, from the block table). Caches are
// u32 words of dtype `dtype` (kv_codes.wgsl): f16 pairs, f32 bits, or per head row of
// head_dim values a scale word and byte codes. Float caches: one thread per (token, pair of
// values); quantized: one per (token, kv head, K or V) row. Launcher: src/ops/kv.rs.
struct Params {
    n_tokens: u32,
    row_len: u32,
    dtype: u32,
    slot_offset: u32,
    k_offset: u32,
    v_offset: u32,
    src_stride: u32,
    head_dim: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> slots: array<u32>;
@group(0) @binding(4) var<storage, read_write> kc: array<u32>;
@group(0) @binding(5) var<storage, read_write> vc: array<u32>;

const WG: u32 = 64u;

fn src(is_v: bool, i: u32) -> f32 {
    if (is_v) {
        return v[i];
    }
    return k[i];
}

fn put(is_v: bool, i: u32, w: u32) {
    if (is_v) {
        vc[i] = w;
    } else {
        kc[i] = w;
    }
}

// Quantized row g: token t, K (then V) rows of every kv head.
fn write_quant_row(g: u32) {
    let hd = p.head_dim;
    let n_kv = p.row_len / hd;
    if (g >= p.n_tokens * 2u * n_kv) {
        return;
    }
    let t = g / (2u * n_kv);
    let r = g % (2u * n_kv);
    let is_v = r >= n_kv;
    let h = r % n_kv;
    var base = p.k_offset + t * p.src_stride + h * hd;
    if (is_v) {
        base = p.v_offset + t * p.src_stride + h * hd;
    }
    var amax = 0.0;
    for (var d = 0u; d < hd; d++) {
        amax = max(amax, abs(src(is_v, base + d)));
    }
    let si = kvq_scale(amax, p.dtype);
    let rw = kvq_row_words(hd);
    let at = (slots[p.slot_offset + t] * n_kv + h) * rw;
    put(is_v, at, bitcast<u32>(si.x));
    for (var w = 0u; w + 1u < rw; w++) {
        var word = 0u;
        for (var b = 0u; b < 4u; b++) {
            let d = 4u * w + b;
            if (d < hd) {
                word |= kvq_encode(src(is_v, base + d) * si.y, p.dtype) << (8u * b);
            }
        }
        put(is_v, at + 1u + w, word);
    }
}

@compute @workgroup_size(WG)
fn kv_write(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = (wid.x + wid.y * nwg.x) * WG + lid;
    if (p.dtype >= KV_INT8) {
        write_quant_row(g);
        return;
    }
    let pairs = p.row_len / 2u;
    if (g >= p.n_tokens * pairs) {
        return;
    }
    let t = g / pairs;
    let e = 2u * (g % pairs);
    let ka = k[p.k_offset + t * p.src_stride + e];
    let kb = k[p.k_offset + t * p.src_stride + e + 1u];
    let va = v[p.v_offset + t * p.src_stride + e];
    let vb = v[p.v_offset + t * p.src_stride + e + 1u];
    let at = slots[p.slot_offset + t] * p.row_len + e;
    if (p.dtype == KV_F16) {
        kc[at / 2u] = pack2x16float(vec2<f32>(ka, kb));
        vc[at / 2u] = pack2x16float(vec2<f32>(va, vb));
    } else {
        kc[at] = bitcast<u32>(ka);
        kc[at + 1u] = bitcast<u32>(kb);
        vc[at] = bitcast<u32>(va);
        vc[at + 1u] = bitcast<u32>(vb);
    }
}
