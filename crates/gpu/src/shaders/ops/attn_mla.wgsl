// attn_mla: absorbed multi-head latent attention (the MLA decode form) over a paged latent
// cache. Every head attends the same cached rows [c_kv (r) ‖ k_pe (rd)] (f16 pairs, r + rd
// values per slot): score_h(t) = scale · (q̃_h · c_kv(t) + RoPE(q_pe_h) · k_pe(t)), and the
// values are c_kv(t) itself. Workgroup (head h, token j, split s) covers key positions
// [s · S, (s + 1) · S) ∩ [0, pos] (S = keys_per_split). With one split it writes the
// normalised output to dst[out_offset + (j · H + h) · r ..]; else its partial (max score,
// Σ exp, unnormalised Σ exp · c_kv: r + 2 floats) to dst[((j · H + h) · n_splits + s) ·
// (r + 2)], which attn_combine merges. q̃ of (j, h) is q_abs[(j · H + h) · r ..], its
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
const MAX_W: u32 = 1024u;
const MAX_R: u32 = 512u;
// Value words (two latent values each) per thread.
const WPT: u32 = MAX_R / 2u / WG;

var<workgroup> qs: array<f32, MAX_W>;
var<workgroup> sc: array<f32, WG>;
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
    let h = wid.x;
    let j = wid.y;
    let s = wid.z;
    let r = p.r;
    let rd = p.rope & 0x7FFFFFFFu;
    let w = r + rd;
    let row_words = w / 2u;
    let qi = j * p.n_heads + h;
    for (var d = lid; d < r; d += WG) {
        qs[d] = q_abs[qi * r + d];
    }
    for (var i = lid; i < rd; i += WG) {
        qs[r + i] = rope_q(qi * rd, p.cs_offset + j * rd, i);
    }
    workgroupBarrier();
    let pos = seqs[p.meta_offset + 2u * j];
    let table = seqs[p.meta_offset + 2u * j + 1u];
    let k0 = min(s * p.keys_per_split, pos + 1u);
    let k1 = min(k0 + p.keys_per_split, pos + 1u);
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<vec2<f32>, WPT>;
    for (var t0 = k0; t0 < k1; t0 += WG) {
        var score = -3.0e38;
        var kb = 0u;
        let t = t0 + lid;
        if (t < k1) {
            kb = (seqs[table + t / BLOCK] * BLOCK + t % BLOCK) * row_words;
            // Eight values per step in four independent chains (loads issue together).
            var c0 = 0.0;
            var c1 = 0.0;
            var c2 = 0.0;
            var c3 = 0.0;
            var d = 0u;
            for (; d + 8u <= w; d += 8u) {
                let e = kb + d / 2u;
                let a0 = unpack2x16float(cache[e]);
                let a1 = unpack2x16float(cache[e + 1u]);
                let a2 = unpack2x16float(cache[e + 2u]);
                let a3 = unpack2x16float(cache[e + 3u]);
                c0 = fma(qs[d], a0.x, fma(qs[d + 1u], a0.y, c0));
                c1 = fma(qs[d + 2u], a1.x, fma(qs[d + 3u], a1.y, c1));
                c2 = fma(qs[d + 4u], a2.x, fma(qs[d + 5u], a2.y, c2));
                c3 = fma(qs[d + 6u], a3.x, fma(qs[d + 7u], a3.y, c3));
            }
            for (; d < w; d += 2u) {
                let a = unpack2x16float(cache[kb + d / 2u]);
                c0 = fma(qs[d], a.x, fma(qs[d + 1u], a.y, c0));
            }
            score = ((c0 + c1) + (c2 + c3)) * p.scale;
        }
        sc[lid] = score;
        kbase[lid] = kb;
        workgroupBarrier();
        let cnt = min(WG, k1 - t0);
        var mt = m;
        for (var i = 0u; i < cnt; i++) {
            mt = max(mt, sc[i]);
        }
        let alpha = exp(m - mt);
        l *= alpha;
        for (var k = 0u; k < WPT; k++) {
            acc[k] *= alpha;
        }
        for (var i = 0u; i < cnt; i++) {
            let pw = exp(sc[i] - mt);
            l += pw;
            let b = kbase[i];
            for (var k = 0u; k < WPT; k++) {
                let wi = lid + k * WG;
                if (2u * wi < r) {
                    acc[k] = fma(vec2<f32>(pw), unpack2x16float(cache[b + wi]), acc[k]);
                }
            }
        }
        m = mt;
        workgroupBarrier();
    }
    if (nwg.z == 1u) {
        let ob = p.out_offset + qi * r;
        let inv = select(0.0, 1.0 / l, l > 0.0);
        for (var k = 0u; k < WPT; k++) {
            let d = 2u * (lid + k * WG);
            if (d < r) {
                dst[ob + d] = acc[k].x * inv;
                dst[ob + d + 1u] = acc[k].y * inv;
            }
        }
        return;
    }
    let pb = (qi * nwg.z + s) * (r + 2u);
    if (lid == 0u) {
        dst[pb] = m;
        dst[pb + 1u] = l;
    }
    for (var k = 0u; k < WPT; k++) {
        let d = 2u * (lid + k * WG);
        if (d < r) {
            dst[pb + 2u + d] = acc[k].x;
            dst[pb + 2u + d + 1u] = acc[k].y;
        }
    }
}
