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
// block table); slot of position t = table[t / 16] · 16 + t % 16. Launcher:
// src/ops/attn_mla.rs.
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

var<workgroup> qs: array<f32, 2560>; // HG · MAX_W
var<workgroup> sc: array<f32, 512>; // HG · WG
// First cache word of each key in the tile, so the value pass skips the block table.
var<workgroup> kbase: array<u32, WG>;

// Rotated value i of the rope part whose unrotated values start at q_pe[qb], angles at cs[cb].
fn rope_q(qb: u32, cb: u32, i: u32) -> f32 {
    let half = (p.rope & 0x7FFFFFFFu) / 2u;
    var k = i / 2u;
    var ia = qb + 2u * k;
    var ib = ia + 1u;
    var second = (i & 1u) == 1u;
    if ((p.rope >> 31u) == 1u) {
        k = i % half;
        ia = qb + k;
        ib = ia + half;
        second = i >= half;
    }
    let a = q_pe[ia];
    let b = q_pe[ib];
    let c = cs[cb + k];
    let s = cs[cb + half + k];
    if (second) {
        return a * s + b * c;
    }
    return a * c - b * s;
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
    for (var e = lid; e < HG * w; e += WG) {
        let g = e / w;
        let d = e % w;
        var v = 0.0;
        if (g < nh && d < r) {
            v = q_abs[(q0 + g) * r + d];
        } else if (g < nh) {
            v = rope_q((q0 + g) * rd, p.cs_offset + j * rd, d - r);
        }
        qs[g * MAX_W + d] = v;
    }
    workgroupBarrier();
    let pos = seqs[p.meta_offset + 2u * j];
    let table = seqs[p.meta_offset + 2u * j + 1u];
    let k0 = min(s * p.keys_per_split, pos + 1u);
    let k1 = min(k0 + p.keys_per_split, pos + 1u);
    var m: array<f32, HG>;
    var l: array<f32, HG>;
    var acc: array<vec2<f32>, 8>; // HG · WPT
    for (var g = 0u; g < HG; g++) {
        m[g] = -3.0e38;
    }
    for (var t0 = k0; t0 < k1; t0 += WG) {
        var c = vec4<f32>(-3.0e38);
        var kb = 0u;
        let t = t0 + lid;
        if (t < k1) {
            kb = (seqs[table + t / BLOCK] * BLOCK + t % BLOCK) * row_words;
            // One pass over the key row for the HG heads: four independent chains.
            var c0 = 0.0;
            var c1 = 0.0;
            var c2 = 0.0;
            var c3 = 0.0;
            for (var d = 0u; d < w; d += 2u) {
                let a = unpack2x16float(cache[kb + d / 2u]);
                c0 = fma(qs[d], a.x, fma(qs[d + 1u], a.y, c0));
                c1 = fma(qs[MAX_W + d], a.x, fma(qs[MAX_W + d + 1u], a.y, c1));
                c2 = fma(qs[2u * MAX_W + d], a.x, fma(qs[2u * MAX_W + d + 1u], a.y, c2));
                c3 = fma(qs[3u * MAX_W + d], a.x, fma(qs[3u * MAX_W + d + 1u], a.y, c3));
            }
            c = vec4<f32>(c0, c1, c2, c3) * p.scale;
        }
        for (var g = 0u; g < HG; g++) {
            sc[g * WG + lid] = c[g];
        }
        kbase[lid] = kb;
        workgroupBarrier();
        let cnt = min(WG, k1 - t0);
        for (var g = 0u; g < HG; g++) {
            var mt = m[g];
            for (var i = 0u; i < cnt; i++) {
                mt = max(mt, sc[g * WG + i]);
            }
            let alpha = exp(m[g] - mt);
            l[g] *= alpha;
            for (var k = 0u; k < WPT; k++) {
                acc[g * WPT + k] *= alpha;
            }
            m[g] = mt;
        }
        for (var i = 0u; i < cnt; i++) {
            var pw = vec4<f32>(
                exp(sc[i] - m[0]),
                exp(sc[WG + i] - m[1]),
                exp(sc[2u * WG + i] - m[2]),
                exp(sc[3u * WG + i] - m[3]),
            );
            for (var g = 0u; g < HG; g++) {
                l[g] += pw[g];
            }
            let b = kbase[i];
            for (var k = 0u; k < WPT; k++) {
                let wi = lid + k * WG;
                if (2u * wi < r) {
                    let v = unpack2x16float(cache[b + wi]);
                    for (var g = 0u; g < HG; g++) {
                        acc[g * WPT + k] = fma(vec2<f32>(pw[g]), v, acc[g * WPT + k]);
                    }
                }
            }
        }
        workgroupBarrier();
    }
    for (var g = 0u; g < nh; g++) {
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
