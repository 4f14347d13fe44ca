// sample body, shared by sample_cands and sample_pick: GPU-side sampling in two dispatches.
// Each kernel file declares its bindings and `elem(i) -> vec2<u32>` (orderable key, token
// id) over the elements a workgroup selects from; this file holds the params, the row
// sampling settings, the counter-based RNG, the workgroup reductions and `select_top`,
// which leaves the CAND highest keys of those elements sorted (key desc, id asc) in
// top_key/top_id. Keys: 0 = not a candidate (NaN, -inf, padding); larger key = larger
// logit. Launcher: src/ops/sample.rs.
struct Params {
    n: u32,          // vocabulary (values per row)
    rows: u32,
    x_offset: u32,   // first logit of row 0
    stride: u32,     // floats between rows
    out_offset: u32, // first id written (sample_pick)
    prm_offset: u32, // word of row 0's settings in the settings buffer
    n_chunks: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
// Tokens per sample_cands workgroup and candidates kept per chunk (and per row).
const CHUNK: u32 = 4096u;
const CAND: u32 = 256u;
// Words per chunk in the scratch: 8 header words, CAND keys, CAND ids.
const CW: u32 = 8u + 2u * CAND;
const NEG: f32 = -3.4e38;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> uscan: array<u32, WG>;
var<workgroup> fscan: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> sel_key: u32;
var<workgroup> sel_left: u32;
var<workgroup> top_key: array<u32, CAND>;
var<workgroup> top_id: array<u32, CAND>;

// Row settings: temperature, top_k, top_p, min_p, seed lo, seed hi, counter, unused.
struct Settings {
    temperature: f32,
    top_k: u32,
    top_p: f32,
    min_p: f32,
    seed_lo: u32,
    seed_hi: u32,
    counter: u32,
}

fn okey(l: f32) -> u32 {
    let b = bitcast<u32>(l);
    let nan_or_neg_inf = (b & 0x7F800000u) == 0x7F800000u && b != 0x7F800000u;
    if (nan_or_neg_inf) {
        return 0u;
    }
    if ((b >> 31u) == 1u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn key_logit(k: u32) -> f32 {
    if ((k >> 31u) == 1u) {
        return bitcast<f32>(k & 0x7FFFFFFFu);
    }
    return bitcast<f32>(~k);
}

// pcg4d (Jarzynski & Olano 2020): a counter-based hash of (seed, counter, token).
fn pcg4d(v_in: vec4<u32>) -> vec4<u32> {
    var v = v_in * 1664525u + vec4<u32>(1013904223u);
    v.x += v.y * v.w;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v.w += v.y * v.z;
    v ^= v >> vec4<u32>(16u);
    v.x += v.y * v.w;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v.w += v.y * v.z;
    return v;
}

// Gumbel noise of `id`: argmax(logit / T + g) draws from softmax(logit / T).
fn gumbel(s: Settings, id: u32) -> f32 {
    let h = pcg4d(vec4<u32>(s.seed_lo, s.seed_hi, s.counter, id)).x;
    let u = (f32(h >> 8u) + 0.5) * (1.0 / 16777216.0);
    return -log(-log(u));
}

// Whether (s, i) beats (bs, bi): higher score, ties to the lower id.
fn beats(s: f32, i: u32, bs: f32, bi: u32) -> bool {
    return s > bs || (s == bs && i < bi);
}

// Workgroup argmax of (score, id); every thread gets the winner.
fn reduce_best(lid: u32, s: f32, i: u32) -> vec2<u32> {
    fscan[lid] = s;
    red_i[lid] = i;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k && beats(fscan[lid + k], red_i[lid + k], fscan[lid], red_i[lid])) {
            fscan[lid] = fscan[lid + k];
            red_i[lid] = red_i[lid + k];
        }
        workgroupBarrier();
    }
    let r = vec2<u32>(bitcast<u32>(fscan[0]), red_i[0]);
    workgroupBarrier();
    return r;
}

// Workgroup (max, Σ exp(x − max)) of per-thread (m, s) pairs.
fn reduce_max_sum(lid: u32, m: f32, s: f32) -> vec2<f32> {
    fscan[lid] = m;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            fscan[lid] = max(fscan[lid], fscan[lid + k]);
        }
        workgroupBarrier();
    }
    let mx = fscan[0];
    workgroupBarrier();
    var sv = 0.0;
    if (s > 0.0) {
        sv = s * exp(m - mx);
    }
    fscan[lid] = sv;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            fscan[lid] += fscan[lid + k];
        }
        workgroupBarrier();
    }
    let r = vec2<f32>(mx, fscan[0]);
    workgroupBarrier();
    return r;
}

// Inclusive prefix sum of `v` over threads (uscan holds it afterwards).
fn scan_u32(lid: u32, v: u32) -> u32 {
    uscan[lid] = v;
    workgroupBarrier();
    for (var off = 1u; off < WG; off <<= 1u) {
        var t = uscan[lid];
        if (lid >= off) {
            t += uscan[lid - off];
        }
        workgroupBarrier();
        uscan[lid] = t;
        workgroupBarrier();
    }
    return uscan[lid];
}

// Inclusive prefix sum of `v` over threads (fscan holds it afterwards).
fn scan_f32(lid: u32, v: f32) -> f32 {
    fscan[lid] = v;
    workgroupBarrier();
    for (var off = 1u; off < WG; off <<= 1u) {
        var t = fscan[lid];
        if (lid >= off) {
            t += fscan[lid - off];
        }
        workgroupBarrier();
        fscan[lid] = t;
        workgroupBarrier();
    }
    return fscan[lid];
}

// Whether entry a ranks before entry b (key desc, id asc).
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

// The CAND highest keys among elements lo..hi of every thread (ranges contiguous and in
// thread order), sorted into top_key/top_id; returns how many there are (≤ CAND).
// Radix select of the CAND-th key (8 bits per pass), an order-preserving compaction (ties
// at the threshold go to the lowest ids), then a bitonic sort.
fn select_top(lid: u32, lo: u32, hi: u32) -> u32 {
    var prefix = 0u;
    var mask = 0u;
    var left = CAND;
    var take_all = false;
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        atomicStore(&hist[lid], 0u);
        if (lid == 0u) {
            sel_left = 0xFFFFFFFFu;
        }
        workgroupBarrier();
        for (var i = lo; i < hi; i++) {
            let k = elem(i).x;
            if (k != 0u && (k & mask) == prefix) {
                atomicAdd(&hist[(k >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        // Position r counts digits 255 − r: the inclusive scan counts digits ≥ 255 − r.
        let own = atomicLoad(&hist[255u - lid]);
        let incl = scan_u32(lid, own);
        let excl = incl - own;
        if (excl < left && incl >= left) {
            sel_key = prefix | ((255u - lid) << shift);
            sel_left = left - excl;
        }
        let found = workgroupUniformLoad(&sel_left);
        if (found == 0xFFFFFFFFu) {
            // Fewer than CAND candidates in all: take every one.
            take_all = true;
            break;
        }
        prefix = workgroupUniformLoad(&sel_key);
        left = found;
        mask |= 255u << shift;
    }
    // Count what this thread contributes: keys above the threshold, and ties at it.
    var gt = 0u;
    var eq = 0u;
    for (var i = lo; i < hi; i++) {
        let k = elem(i).x;
        if (k != 0u && (take_all || k > prefix)) {
            gt += 1u;
        } else if (k != 0u && k == prefix) {
            eq += 1u;
        }
    }
    let packed = gt | (eq << 16u);
    let incl = scan_u32(lid, packed);
    let total = workgroupUniformLoad(&uscan[WG - 1u]);
    let g_total = total & 0xFFFFu;
    var n_eq = 0u;
    if (!take_all) {
        n_eq = min(left, total >> 16u);
    }
    let count = g_total + n_eq;
    top_key[lid] = 0u;
    top_id[lid] = 0xFFFFFFFFu;
    workgroupBarrier();
    var g_pos = (incl - packed) & 0xFFFFu;
    var e_pos = (incl - packed) >> 16u;
    for (var i = lo; i < hi; i++) {
        let ki = elem(i);
        let k = ki.x;
        if (k != 0u && (take_all || k > prefix)) {
            top_key[g_pos] = k;
            top_id[g_pos] = ki.y;
            g_pos += 1u;
        } else if (k != 0u && k == prefix) {
            if (e_pos < n_eq) {
                top_key[g_total + e_pos] = k;
                top_id[g_total + e_pos] = ki.y;
            }
            e_pos += 1u;
        }
    }
    workgroupBarrier();
    // Bitonic sort, descending (one compare-exchange per thread and stage).
    for (var k = 2u; k <= CAND; k <<= 1u) {
        for (var j = k >> 1u; j > 0u; j >>= 1u) {
            let l = lid ^ j;
            if (lid < CAND && l > lid) {
                let a_first = before(top_key[lid], top_id[lid], top_key[l], top_id[l]);
                let want_first = (lid & k) == 0u;
                if (a_first != want_first) {
                    let tk = top_key[lid];
                    let ti = top_id[lid];
                    top_key[lid] = top_key[l];
                    top_id[lid] = top_id[l];
                    top_key[l] = tk;
                    top_id[l] = ti;
                }
            }
            workgroupBarrier();
        }
    }
    return count;
}
