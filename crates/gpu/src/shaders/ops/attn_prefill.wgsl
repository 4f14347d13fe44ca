// attn_prefill: flash-style causal attention for prefill. One workgroup per (query head h,
// block of up to BQ consecutive query tokens of one sequence): K and V tiles of BK keys are
// loaded once into workgroup memory and shared by the block's queries (the per-query kernel
// attn_paged reads every key once per query). TPQ threads per query split its head dims
// (d = r + k · TPQ); the score of each (query, key) is the sum of their partial dots. Online
// softmax per query, masks: keys t ≤ pos and, with a window w > 0, t > pos − w.
// blocks[blocks_offset + 2b] = first token of block b, [.. + 1] = its token count (1..BQ);
// seqs[meta_offset + 2j] = token j's position, [.. + 1] = its block table's word index
// (the KV cache layout and dtypes of attn_paged: quantized rows are dequantized as the
// tiles load). q is read from offset 0: token j's heads at
// j · q_stride; output at out_offset + (j · n_heads + h) · head_dim. head_dim ≤ MAX_HD and
// even. Launcher: src/ops/attention_prefill.rs.
struct Params {
    heads: u32, // n_heads | n_kv_heads << 16
    q_stride: u32,
    head_dim: u32,
    scale: f32,
    window: u32, // window (low 30 bits) | cache dtype << 30
    meta_offset: u32,
    blocks_offset: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
@group(0) @binding(4) var<storage, read> seqs: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 128u;
const BQ: u32 = 16u;
const TPQ: u32 = 8u;
const BK: u32 = 16u;
const BLOCK: u32 = 16u;
const MAX_HD: u32 = 256u;
const DPT: u32 = MAX_HD / TPQ;

// The K or V tile (BK rows of head_dim), partial dots, and the tile's scores.
var<workgroup> tile: array<f32, BK * MAX_HD>;
var<workgroup> part: array<f32, WG * BK>;
var<workgroup> sc: array<f32, BQ * BK>;
var<workgroup> kbase: array<u32, BK>;

fn cache_word(is_k: bool, i: u32) -> u32 {
    if (is_k) {
        return kc[i];
    }
    return vc[i];
}

// Value d of the K or V head row starting at `base` (float caches: its first value's
// index; quantized: its scale word), dequantized.
fn cache_val(is_k: bool, base: u32, d: u32) -> f32 {
    let dt = p.window >> 30u;
    if (dt == KV_F16) {
        return unpack2x16float(cache_word(is_k, (base + d) / 2u))[(base + d) & 1u];
    }
    if (dt == KV_F32) {
        return bitcast<f32>(cache_word(is_k, base + d));
    }
    let c = (cache_word(is_k, base + 1u + d / 4u) >> (8u * (d & 3u))) & 0xFFu;
    return kvq_decode(c, dt) * bitcast<f32>(cache_word(is_k, base));
}

// Load the K (or V) rows of keys t0 .. t0 + BK (those ≤ last) into `tile`.
fn load_tile(lid: u32, is_k: bool, t0: u32, last: u32) {
    let hd = p.head_dim;
    for (var e = lid; e < BK * hd; e += WG) {
        let key = e / hd;
        if (t0 + key <= last) {
            tile[e] = cache_val(is_k, kbase[key], e % hd);
        }
    }
}

@compute @workgroup_size(WG)
fn attn_prefill(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let h = wid.x;
    let blk = wid.y;
    let hd = p.head_dim;
    let n_heads = p.heads & 0xFFFFu;
    let n_kv = p.heads >> 16u;
    let kvh = h / (n_heads / n_kv);
    let window = p.window & 0x3FFFFFFFu;
    let j0 = seqs[p.blocks_offset + 2u * blk];
    let nq = seqs[p.blocks_offset + 2u * blk + 1u];
    let qi = lid / TPQ;
    let r = lid % TPQ;
    // Threads past the block's queries shadow its last one and write nothing.
    let j = j0 + min(qi, nq - 1u);
    let pos = seqs[p.meta_offset + 2u * j];
    let table = seqs[p.meta_offset + 2u * j0 + 1u];
    let pos0 = seqs[p.meta_offset + 2u * j0];
    let last = pos0 + nq - 1u;
    var lo = 0u;
    if (window > 0u && pos0 + 1u > window) {
        lo = pos0 + 1u - window;
    }
    var q_lo = 0u;
    if (window > 0u && pos + 1u > window) {
        q_lo = pos + 1u - window;
    }
    var qr: array<f32, DPT>;
    var acc: array<f32, DPT>;
    let qb = j * p.q_stride + h * hd;
    for (var k = 0u; k < DPT; k++) {
        let d = r + k * TPQ;
        acc[k] = 0.0;
        qr[k] = 0.0;
        if (d < hd) {
            qr[k] = q[qb + d];
        }
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var t0 = lo; t0 <= last; t0 += BK) {
        if (lid < BK && t0 + lid <= last) {
            let t = t0 + lid;
            let slot = seqs[table + t / BLOCK] * BLOCK + t % BLOCK;
            var rw = hd;
            if ((p.window >> 30u) >= KV_INT8) {
                rw = kvq_row_words(hd);
            }
            kbase[lid] = (slot * n_kv + kvh) * rw;
        }
        workgroupBarrier();
        load_tile(lid, true, t0, last);
        workgroupBarrier();
        // Partial dots of this thread's dims with every key of the tile.
        for (var key = 0u; key < BK; key++) {
            var s = 0.0;
            let kb = key * hd;
            for (var k = 0u; k < DPT; k++) {
                let d = r + k * TPQ;
                if (d < hd) {
                    s = fma(qr[k], tile[kb + d], s);
                }
            }
            part[lid * BK + key] = s;
        }
        workgroupBarrier();
        // Scores: thread (qi, r) sums keys r and r + TPQ of its query; V replaces K.
        for (var key = r; key < BK; key += TPQ) {
            var s = 0.0;
            for (var i = 0u; i < TPQ; i++) {
                s += part[(qi * TPQ + i) * BK + key];
            }
            sc[qi * BK + key] = s * p.scale;
        }
        load_tile(lid, false, t0, last);
        workgroupBarrier();
        var mt = m;
        for (var key = 0u; key < BK; key++) {
            let t = t0 + key;
            if (t <= pos && t >= q_lo) {
                mt = max(mt, sc[qi * BK + key]);
            }
        }
        let alpha = exp(m - mt);
        l *= alpha;
        for (var k = 0u; k < DPT; k++) {
            acc[k] *= alpha;
        }
        for (var key = 0u; key < BK; key++) {
            let t = t0 + key;
            if (t <= pos && t >= q_lo) {
                let pw = exp(sc[qi * BK + key] - mt);
                l += pw;
                let vb = key * hd;
                for (var k = 0u; k < DPT; k++) {
                    let d = r + k * TPQ;
                    if (d < hd) {
                        acc[k] = fma(pw, tile[vb + d], acc[k]);
                    }
                }
            }
        }
        m = mt;
        workgroupBarrier();
    }
    if (qi < nq) {
        let ob = p.out_offset + (j * n_heads + h) * hd;
        for (var k = 0u; k < DPT; k++) {
            let d = r + k * TPQ;
            if (d < hd) {
                out[ob + d] = acc[k] / l;
            }
        }
    }
}
