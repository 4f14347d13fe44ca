// attention rows, shared by the attn_paged kernels and attn_split: the params and bindings,
// and reads of a paged K/V cache. seqs[meta_offset + 2j] = query j's absolute position,
// seqs[.. + 1] = the word index in meta of its sequence's block table; the key at position t
// lives in slot table[t / 16] · 16 + t % 16, head row slot · n_kv_heads + kv_head of kc/vc
// (u32 words of the cache dtype in bits 30-31 of `window`, kv_codes.wgsl: f16 pairs, f32
// bits, or a scale word and byte codes per row, dequantized as they load). Keys t ≤ pos and,
// with a window w > 0 (low 30 bits), t > pos − w. Query j's heads start at
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

const BLOCK: u32 = 16u;
const MAX_HD: u32 = 256u;
// Most dims per key row a thread loads (8 per chunk).
const CHUNK: u32 = 8u;

fn kv_dtype() -> u32 {
    return p.window >> 30u;
}

// Dims d .. d + 7 (d + 8 ≤ head_dim) of the row at `base` of cache `which` (0 = K, 1 = V),
// unscaled.
fn row8(which: u32, base: u32, d: u32) -> array<f32, 8> {
    var r: array<f32, 8>;
    let dt = kv_dtype();
    if (dt == KV_F16) {
        let w = (base + d) / 2u;
        var a: vec4<u32>;
        if (which == 0u) {
            a = vec4<u32>(kc[w], kc[w + 1u], kc[w + 2u], kc[w + 3u]);
        } else {
            a = vec4<u32>(vc[w], vc[w + 1u], vc[w + 2u], vc[w + 3u]);
        }
        for (var i = 0u; i < 4u; i++) {
            let v = unpack2x16float(a[i]);
            r[2u * i] = v.x;
            r[2u * i + 1u] = v.y;
        }
    } else if (dt == KV_F32) {
        for (var i = 0u; i < 8u; i++) {
            r[i] = bitcast<f32>(select(vc[base + d + i], kc[base + d + i], which == 0u));
        }
    } else {
        let w = base + 1u + d / 4u;
        var a: vec2<u32>;
        if (which == 0u) {
            a = vec2<u32>(kc[w], kc[w + 1u]);
        } else {
            a = vec2<u32>(vc[w], vc[w + 1u]);
        }
        for (var i = 0u; i < 8u; i++) {
            r[i] = kvq_decode((a[i / 4u] >> (8u * (i % 4u))) & 0xFFu, dt);
        }
    }
    return r;
}

// Dims d, d + 1 (d even, d + 2 ≤ head_dim) of a row, unscaled: the tail of a chunk.
fn row2(which: u32, base: u32, d: u32) -> vec2<f32> {
    let dt = kv_dtype();
    if (dt == KV_F16) {
        let w = (base + d) / 2u;
        return unpack2x16float(select(vc[w], kc[w], which == 0u));
    }
    if (dt == KV_F32) {
        let a = select(vc[base + d], kc[base + d], which == 0u);
        let b = select(vc[base + d + 1u], kc[base + d + 1u], which == 0u);
        return vec2<f32>(bitcast<f32>(a), bitcast<f32>(b));
    }
    let w = select(vc[base + 1u + d / 4u], kc[base + 1u + d / 4u], which == 0u);
    return kvq_decode2(w >> (8u * (d & 3u)), dt);
}

// Dims of chunk c (CHUNK · c ..) of a row, zero past head_dim.
fn chunk(which: u32, base: u32, c: u32) -> array<f32, 8> {
    let d0 = c * CHUNK;
    if (d0 + CHUNK <= p.head_dim) {
        return row8(which, base, d0);
    }
    var r: array<f32, 8>;
    for (var i = 0u; i < CHUNK; i += 2u) {
        if (d0 + i < p.head_dim) {
            let v = row2(which, base, d0 + i);
            r[i] = v.x;
            r[i + 1u] = v.y;
        }
    }
    return r;
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

// Threads per key row: the power of two ≥ the row's chunks.
fn lanes() -> u32 {
    let n = (p.head_dim + CHUNK - 1u) / CHUNK;
    var l = 1u;
    while (l < n) {
        l *= 2u;
    }
    return l;
}

fn dot8(a: array<f32, 8>, b: array<f32, 8>) -> f32 {
    return dot(vec4<f32>(a[0], a[1], a[2], a[3]), vec4<f32>(b[0], b[1], b[2], b[3]))
        + dot(vec4<f32>(a[4], a[5], a[6], a[7]), vec4<f32>(b[4], b[5], b[6], b[7]));
}

// F16 rows, whole chunks (the fast path): the 4 words of chunk c of the K / V row at base.
// Callers load several keys' words before decoding any: a load consumed before the next is
// issued costs a memory round trip of its own.
fn k_words(base: u32, c: u32) -> vec4<u32> {
    let w = base / 2u + c * 4u;
    return vec4<u32>(kc[w], kc[w + 1u], kc[w + 2u], kc[w + 3u]);
}

fn v_words(base: u32, c: u32) -> vec4<u32> {
    let w = base / 2u + c * 4u;
    return vec4<u32>(vc[w], vc[w + 1u], vc[w + 2u], vc[w + 3u]);
}

fn f16x8(a: vec4<u32>) -> array<f32, 8> {
    var r: array<f32, 8>;
    for (var i = 0u; i < 4u; i++) {
        let v = unpack2x16float(a[i]);
        r[2u * i] = v.x;
        r[2u * i + 1u] = v.y;
    }
    return r;
}
