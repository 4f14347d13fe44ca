// attention body for grouped queries (attn_paged_gqa): one workgroup per (kv head, query
// token) serves all G = n_heads / n_kv_heads query heads of that kv head (G ≤ 8), so each
// K/V row is loaded once for G heads instead of once per head. Same math, cache layout and
// params as `attend` in ops/attn_body.wgsl (whose loaders and bindings it uses, none of its
// workgroup memory): an online softmax over tiles of keys.
// Threads are (head set s, key group g, lane c): a head set holds HT heads per thread
// (two sets for G > 4), NL lanes share a key row, each loading 8 consecutive dims, so a row
// is read coalesced. A tile gives each key group at most 4 keys: a thread loads the K and V
// chunks (and scales) of its 4 keys at once, then does the dot products and, later, the V
// updates of its HT heads from registers. Per tile, three barriers and no reduction trees:
//   1. partial dots [head][key][lane] (rows padded to NL + 1: conflict-free sums),
//   2. scores: one thread per (head, key) sums its row of partials,
//   3. weights exp(score − tile max) per (head, key), the tile max per head,
//   then every thread merges its keys into its heads' running max / sum / output (the
//   max is the workgroup's, so the key groups' partial outputs add up at the end).
// The next tile's writes only touch arrays whose readers passed a later barrier.
// Output: `gqa_store(j, head, d, value)` of the entry file.

// Query heads per thread (per head set).
const HT: u32 = 4u;
// Most query heads per kv head.
const MAXG: u32 = 8u;
// Most keys per tile.
const GTK: u32 = 64u;
// Partial dots of a tile; ≥ WG · CHUNK for the final sum over key groups.
const GRED: u32 = 2304u;

var<workgroup> g_red: array<f32, GRED>;
// Scores, then weights, [head][key] with rows GTK apart.
var<workgroup> g_sc: array<f32, 512>;
var<workgroup> g_pe: array<f32, 512>;
var<workgroup> g_tmx: array<f32, MAXG>;
// Running sums of the key groups, for the final sum.
var<workgroup> g_l: array<f32, WG>;

// Largest of g_sc[base .. base + cnt).
fn gqa_tile_max(base: u32, cnt: u32) -> f32 {
    var m4 = vec4<f32>(-3.0e38);
    var k = 0u;
    for (; k + 4u <= cnt; k += 4u) {
        let b = base + k;
        m4 = max(m4, vec4<f32>(g_sc[b], g_sc[b + 1u], g_sc[b + 2u], g_sc[b + 3u]));
    }
    var m = max(max(m4.x, m4.y), max(m4.z, m4.w));
    for (; k < cnt; k++) {
        m = max(m, g_sc[base + k]);
    }
    return m;
}

// Row starts of keys t0 + g + n · kg (n < 4; past cnt: the last key).
fn gqa_bases(table: u32, kvh: u32, t0: u32, cnt: u32, g: u32, kg: u32) -> array<u32, 4> {
    var kb: array<u32, 4>;
    for (var n = 0u; n < 4u; n++) {
        kb[n] = key_base(table, t0 + min(g + n * kg, cnt - 1u), kvh);
    }
    return kb;
}

// Attention of the G query heads of kv head kvh for query token j.
fn gqa_attend(lid: u32, kvh: u32, j: u32) {
    let hd = p.head_dim;
    let gh = (p.heads & 0xFFFFu) / (p.heads >> 16u);
    let nl = lanes();
    let sets = (gh + HT - 1u) / HT;
    let kg = WG / (nl * sets);
    let stride = nl + 1u;
    // Keys per tile: at most 4 per key group, partial dots that fit in g_red, a multiple
    // of the key groups.
    var tk = min(min(GTK, 4u * kg), GRED / (gh * stride));
    if (tk >= kg) {
        tk -= tk % kg;
    }
    let c = lid % nl;
    let g = (lid / nl) % kg;
    let hs = lid / (nl * kg);
    let live = c * CHUNK < hd;
    let nc = (hd + CHUNK - 1u) / CHUNK;
    let table = seqs[p.meta_offset + 2u * j + 1u];
    let qb = p.q_offset + j * p.q_stride + kvh * gh * hd;
    var qv: array<array<f32, CHUNK>, HT>;
    var o: array<array<f32, CHUNK>, HT>;
    var m: array<f32, HT>;
    var l: array<f32, HT>;
    for (var hh = 0u; hh < HT; hh++) {
        m[hh] = -3.0e38;
        let h = hs * HT + hh;
        for (var i = 0u; i < CHUNK; i++) {
            let d = c * CHUNK + i;
            if (h < gh && d < hd) {
                qv[hh][i] = q[qb + h * hd + d];
            }
        }
    }
    let r = key_range(j);
    var next = gqa_bases(table, kvh, r.x, min(tk, r.y - r.x), g, kg);
    for (var t0 = r.x; t0 < r.y; t0 += tk) {
        let cnt = min(tk, r.y - t0);
        // This thread's keys g + n · kg (n < 4, those below cnt): K and V rows and scales
        // load together, so V is in registers when the weights are.
        let kb = next;
        var ok: array<bool, 4>;
        for (var n = 0u; n < 4u; n++) {
            ok[n] = g + n * kg < cnt;
        }
        var kr: array<array<f32, CHUNK>, 4>;
        var vr: array<array<f32, CHUNK>, 4>;
        var sk = vec4<f32>(1.0);
        var sv = vec4<f32>(1.0);
        if (live) {
            for (var n = 0u; n < 4u; n++) {
                if (ok[n]) {
                    kr[n] = chunk(0u, kb[n], c);
                    vr[n] = chunk(1u, kb[n], c);
                }
            }
            // The next tile's rows, while these load (one dependent load less per tile).
            if (t0 + tk < r.y) {
                next = gqa_bases(table, kvh, t0 + tk, min(tk, r.y - t0 - tk), g, kg);
            }
            if (kv_dtype() >= KV_INT8) {
                sk = vec4<f32>(scale_k(kb[0]), scale_k(kb[1]), scale_k(kb[2]), scale_k(kb[3]));
                // Quantized V: the row scale rides on the softmax weight.
                sv = vec4<f32>(scale_v(kb[0]), scale_v(kb[1]), scale_v(kb[2]), scale_v(kb[3]));
            }
            for (var hh = 0u; hh < HT; hh++) {
                let h = hs * HT + hh;
                for (var n = 0u; n < 4u; n++) {
                    if (h < gh && ok[n]) {
                        g_red[(h * tk + g + n * kg) * stride + c] = dot8(qv[hh], kr[n]) * sk[n];
                    }
                }
            }
        }
        workgroupBarrier();
        for (var x = lid; x < gh * cnt; x += WG) {
            let h = x / cnt;
            let i = x % cnt;
            let row = (h * tk + i) * stride;
            var s = 0.0;
            for (var k = 0u; k < nc; k++) {
                s += g_red[row + k];
            }
            g_sc[h * GTK + i] = s * p.scale;
        }
        workgroupBarrier();
        for (var x = lid; x < gh * cnt; x += WG) {
            let h = x / cnt;
            let i = x % cnt;
            let mx = gqa_tile_max(h * GTK, cnt);
            g_pe[h * GTK + i] = exp(g_sc[h * GTK + i] - mx);
            if (i == 0u) {
                g_tmx[h] = mx;
            }
        }
        workgroupBarrier();
        // Merge the tile: old terms scale by exp(m − m'), the tile's by exp(tile max − m').
        for (var hh = 0u; hh < HT; hh++) {
            let h = hs * HT + hh;
            if (h < gh) {
                let tm = g_tmx[h];
                let mt = max(m[hh], tm);
                let alpha = exp(m[hh] - mt);
                let beta = exp(tm - mt);
                m[hh] = mt;
                var e: vec4<f32>;
                for (var n = 0u; n < 4u; n++) {
                    e[n] = select(0.0, beta * g_pe[h * GTK + min(g + n * kg, GTK - 1u)], ok[n]);
                }
                l[hh] = l[hh] * alpha + ((e.x + e.y) + (e.z + e.w));
                let w = e * sv;
                for (var d = 0u; d < CHUNK; d++) {
                    let pv = fma(w.z, vr[2][d], fma(w.y, vr[1][d], w.x * vr[0][d]));
                    o[hh][d] = fma(alpha, o[hh][d], fma(w.w, vr[3][d], pv));
                }
            }
        }
    }
    // Per head: sum the key groups' outputs (g_red[slot · head_dim + d]) and running sums.
    let slot = lid / nl;
    // Constant trip counts wherever o, qv, kr, vr are indexed: they stay in registers.
    for (var hh = 0u; hh < HT; hh++) {
        // Uniform: every thread sees the same gh.
        if (hh < gh) {
            let h = hs * HT + hh;
            if (h < gh) {
                if (live) {
                    for (var i = 0u; i < CHUNK; i++) {
                        let d = c * CHUNK + i;
                        if (d < hd) {
                            g_red[slot * hd + d] = o[hh][i];
                        }
                    }
                }
                if (c == 0u) {
                    g_l[slot] = l[hh];
                }
            }
            workgroupBarrier();
            for (var x = lid; x < sets * hd; x += WG) {
                let s2 = x / hd;
                let d = x % hd;
                let h2 = s2 * HT + hh;
                if (h2 < gh) {
                    var lt = 0.0;
                    var acc_d = 0.0;
                    for (var gi = s2 * kg; gi < (s2 + 1u) * kg; gi++) {
                        lt += g_l[gi];
                        acc_d += g_red[gi * hd + d];
                    }
                    gqa_store(j, kvh * gh + h2, d, acc_d / lt);
                }
            }
            workgroupBarrier();
        }
    }
}
