// attn_mla: absorbed multi-head latent attention (the MLA decode form) over a paged latent
// cache. Every head attends the same cached rows [c_kv (r) ‖ k_pe (rd)] (f16 pairs, r + rd
// values per slot): score_h(t) = scale · (q̃_h · c_kv(t) + RoPE(q_pe_h) · k_pe(t)), and the
// values are c_kv(t) itself. Workgroup (heads HG·g .. HG·g + HG, token j, split s) covers key
// positions [s · S, (s + 1) · S) ∩ [0, pos] (S = keys_per_split): each key row is read once
// for its HG heads. With one split it writes each head's normalised output to
// dst[out_offset + (j · H + h) · r ..]; else its partial (max score, Σ exp, unnormalised
// Σ exp · c_kv: r + 2 floats) to dst[((j · H + h) · n_splits + s) · (r + 2)], which
// attn_combine merges. q̃ of (j, h) is q_abs[(j · H + h) · r ..], its
// unrotated q_pe is q_pe[(j · H + h) · rd ..], its RoPE row cs[cs_offset + j · rd ..] (cos ‖
// sin of the half angles). seqs as in attn_body: per token (position, word index of its
// block table); slot of position t = table[t / 16] · 16 + t % 16. Keys go in tiles of TK:
// for the scores, LN lanes share each key row (coalesced loads, a fixed trip count so
// every lane's loads of a row issue together) and their partial dots meet in workgroup
// memory; the value pass keeps eight keys' loads in flight per thread. (One thread walking a
// whole 576-value row took ~38 µs per layer on an H200.) Launcher: src/ops/attn_mla.rs.
struct Params {
    n_heads: u32,
    r: u32,
    rope: u32, // rd | neox << 31
    scale: f32,
    meta_offset: u32,
    keys_per_split: u32,
    out_offset: u32,
    cs_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q_abs: array<f32>;
@group(0) @binding(2) var<storage, read> q_pe: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;
@group(0) @binding(4) var<storage, read> cache: array<u32>;
@group(0) @binding(5) var<storage, read> seqs: array<u32>;
@group(0) @binding(6) var<storage, read_write> dst: array<f32>;

const WG: u32 = 128u;
const BLOCK: u32 = 16u;
// Heads per workgroup (they share every key and value load).
const HG: u32 = 4u;
const MAX_W: u32 = 640u;
const MAX_R: u32 = 512u;
// Value words (two latent values each) per thread and head.
const WPT: u32 = MAX_R / 2u / WG;
// Keys per tile, lanes per key row in the score pass, key groups (WG / LN).
const TK: u32 = 32u;
const LN: u32 = 32u;
const KG: u32 = WG / LN;
// Row words per lane, at most (MAX_W / 2 / LN).
const WPL: u32 = 10u;

// q of the HG heads per dim, interleaved: qv[d] = (head 0, 1, 2, 3).
var<workgroup> qv: array<vec4<f32>, MAX_W>;
// Partial dots [key][lane] (lane skewed by key), then per key its HG scores.
var<workgroup> red: array<vec4<f32>, 1024>; // TK · LN
var<workgroup> pw: array<vec4<f32>, TK>;
// First cache word of each key in the tile.
var<workgroup> kbase: array<u32, TK>;

// HG heads' partial dots of the key rows at `ka` and `kb` over lane c's words. Every load
// is issued before any is used (indices clamped into the row, words past it dropped): a
// load consumed before the next one is issued costs a memory round trip of its own.
fn lane_dot2(ka: u32, kb: u32, c: u32, row_words: u32) -> array<vec4<f32>, 2> {
    var ra: array<u32, WPL>;
    var rb: array<u32, WPL>;
    for (var k = 0u; k < WPL; k++) {
        let wi = min(c + k * LN, row_words - 1u);
        ra[k] = cache[ka + wi];
        rb[k] = cache[kb + wi];
    }
    var s: array<vec4<f32>, 2>;
    for (var k = 0u; k < WPL; k++) {
        let wi = c + k * LN;
        let a = unpack2x16float(ra[k]);
        let b = unpack2x16float(rb[k]);
        let q0 = qv[min(2u * wi, MAX_W - 2u)];
        let q1 = qv[min(2u * wi + 1u, MAX_W - 1u)];
        let live = wi < row_words;
        s[0] = select(s[0], fma(q0, vec4<f32>(a.x), fma(q1, vec4<f32>(a.y), s[0])), live);
        s[1] = select(s[1], fma(q0, vec4<f32>(b.x), fma(q1, vec4<f32>(b.y), s[1])), live);
    }
    return s;
}

@compute @workgroup_size(WG)
fn attn_mla(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let h0 = wid.x * HG;
    let nh = min(HG, p.n_heads - h0);
    let j = wid.y;
    let s = wid.z;
    let r = p.r;
    let rd = p.rope & 0x7FFFFFFFu;
    let w = r + rd;
    let row_words = w / 2u;
    let q0 = j * p.n_heads + h0;
    for (var d = lid; d < w; d += WG) {
        // Loops over HG with a guard, never up to nh: a private array (`acc` below)
        // indexed by a runtime bound moves to slow local memory.
        var v = vec4<f32>(0.0);
        for (var g = 0u; g < HG; g++) {
            if (g < nh) {
                if (d < r) {
                    v[g] = q_abs[(q0 + g) * r + d];
                } else {
                    v[g] = rope_q((q0 + g) * rd, p.cs_offset + j * rd, d - r);
                }
            }
        }
        qv[d] = v;
    }
    let pos = seqs[p.meta_offset + 2u * j];
    let table = seqs[p.meta_offset + 2u * j + 1u];
    let k0 = min(s * p.keys_per_split, pos + 1u);
    let k1 = min(k0 + p.keys_per_split, pos + 1u);
    let kg = lid / LN;
    let c = lid % LN;
    var m = vec4<f32>(-3.0e38);
    var l = vec4<f32>(0.0);
    var acc: array<vec2<f32>, 8>; // HG · WPT
    for (var t0 = k0; t0 < k1; t0 += TK) {
        let cnt = min(TK, k1 - t0);
        if (lid < cnt) {
            let t = t0 + lid;
            kbase[lid] = (seqs[table + t / BLOCK] * BLOCK + t % BLOCK) * row_words;
        }
        workgroupBarrier();
        // Scores: key group kg takes keys kg, kg + KG, ..., two at a time.
        for (var i = kg; i < cnt; i += 2u * KG) {
            let i2 = i + KG;
            let ab = lane_dot2(kbase[i], kbase[min(i2, cnt - 1u)], c, row_words);
            red[i * LN + (c + i) % LN] = ab[0];
            if (i2 < cnt) {
                red[i2 * LN + (c + i2) % LN] = ab[1];
            }
        }
        workgroupBarrier();
        var sk = vec4<f32>(-3.0e38);
        if (lid < cnt) {
            var t = vec4<f32>(0.0);
            for (var k = 0u; k < LN; k++) {
                t += red[lid * LN + (k + lid) % LN];
            }
            sk = t * p.scale;
        }
        if (lid < TK) {
            pw[lid] = sk;
        }
        workgroupBarrier();
        var mt = m;
        for (var i = 0u; i < cnt; i++) {
            mt = max(mt, pw[i]);
        }
        workgroupBarrier();
        if (lid < cnt) {
            pw[lid] = exp(sk - mt);
        }
        let alpha = exp(m - mt);
        l *= alpha;
        for (var g = 0u; g < HG; g++) {
            for (var k = 0u; k < WPT; k++) {
                acc[g * WPT + k] *= alpha[g];
            }
        }
        m = mt;
        workgroupBarrier();
        for (var i = 0u; i < cnt; i++) {
            l += pw[i];
        }
        // Values: eight keys per step, all their loads in flight together (indices clamped
        // into the row: the words past it accumulate into slots never stored).
        var i = 0u;
        for (; i + 8u <= cnt; i += 8u) {
            var v: array<u32, 8u * WPT>;
            for (var k = 0u; k < WPT; k++) {
                let wi = min(lid + k * WG, r / 2u - 1u);
                for (var e = 0u; e < 8u; e++) {
                    v[k * 8u + e] = cache[kbase[i + e] + wi];
                }
            }
            for (var k = 0u; k < WPT; k++) {
                for (var e = 0u; e < 8u; e++) {
                    let pe = pw[i + e];
                    let x = unpack2x16float(v[k * 8u + e]);
                    for (var g = 0u; g < HG; g++) {
                        acc[g * WPT + k] = fma(vec2<f32>(pe[g]), x, acc[g * WPT + k]);
                    }
                }
            }
        }
        for (; i < cnt; i++) {
            let pe = pw[i];
            let b = kbase[i];
            var v: array<u32, WPT>;
            for (var k = 0u; k < WPT; k++) {
                v[k] = cache[b + min(lid + k * WG, r / 2u - 1u)];
            }
            for (var k = 0u; k < WPT; k++) {
                let x = unpack2x16float(v[k]);
                for (var g = 0u; g < HG; g++) {
                    acc[g * WPT + k] = fma(vec2<f32>(pe[g]), x, acc[g * WPT + k]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var g = 0u; g < HG; g++) {
        if (g >= nh) {
            break;
        }
        let qi = q0 + g;
        if (nwg.z == 1u) {
            let ob = p.out_offset + qi * r;
            let inv = select(0.0, 1.0 / l[g], l[g] > 0.0);
            for (var k = 0u; k < WPT; k++) {
                let d = 2u * (lid + k * WG);
                if (d < r) {
                    dst[ob + d] = acc[g * WPT + k].x * inv;
                    dst[ob + d + 1u] = acc[g * WPT + k].y * inv;
                }
            }
        } else {
            let pb = (qi * nwg.z + s) * (r + 2u);
            if (lid == 0u) {
                dst[pb] = m[g];
                dst[pb + 1u] = l[g];
            }
            for (var k = 0u; k < WPT; k++) {
                let d = 2u * (lid + k * WG);
                if (d < r) {
                    dst[pb + 2u + d] = acc[g * WPT + k].x;
                    dst[pb + 2u + d + 1u] = acc[g * WPT + k].y;
                }
            }
        }
    }
}
