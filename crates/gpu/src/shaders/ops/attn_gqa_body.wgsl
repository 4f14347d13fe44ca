// attention body for grouped queries (attn_paged_gqa): one workgroup per (kv head, query
// token) serves all G = n_heads / n_kv_heads query heads of that kv head (G ≤ 8), so each
// K/V row is loaded once for G heads instead of once per head. Same math, cache layout and
// params as `attend` in ops/attn_body.wgsl (whose loaders and bindings it uses, none of its
// workgroup memory): an online softmax over tiles of keys.
// Threads are (head set s, key group g, lane c): a head set holds HT heads per thread
// (two sets for G > 4), NL lanes share a key row, each loading 8 consecutive dims, so a row
// is read coalesced; every thread keeps four rows' loads in flight and, for each row, does
// the dot products (then the V updates) of its HT heads from registers.
// Per tile of tk keys, three barriers and no reduction trees:
//   1. partial dots [head][key][lane] (rows padded to NL + 1: conflict-free sums),
//   2. scores: one thread per (head, key) sums its row of partials,
//   3. weights exp(score − tile max) per (head, key), the tile max per head,
//   then the V pass merges each head's tile into its running max / sum / output.
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
        let s = vec4<f32>(g_sc[base + k], g_sc[base + k + 1u], g_sc[base + k + 2u], g_sc[base + k + 3u]);
        m4 = max(m4, s);
    }
    var m = max(max(m4.x, m4.y), max(m4.z, m4.w));
    for (; k < cnt; k++) {
        m = max(m, g_sc[base + k]);
    }
    return m;
}

// Attention of the G query heads of kv head kvh for query token j.
fn gqa_attend(lid: u32, kvh: u32, j: u32) {
    let hd = p.head_dim;
    let gh = (p.heads & 0xFFFFu) / (p.heads >> 16u);
    let nl = lanes();
    let sets = (gh + HT - 1u) / HT;
    let kg = WG / (nl * sets);
    let stride = nl + 1u;
    // Keys per tile: the partial dots must fit in g_red; whole rounds per key group.
    var tk = min(GTK, GRED / (gh * stride));
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
    for (var t0 = r.x; t0 < r.y; t0 += tk) {
        let cnt = min(tk, r.y - t0);
        if (live) {
            var i = g;
            for (; i + 3u * kg < cnt; i += 4u * kg) {
                let k0 = chunk(0u, key_base(table, t0 + i, kvh), c);
                let k1 = chunk(0u, key_base(table, t0 + i + kg, kvh), c);
                let k2 = chunk(0u, key_base(table, t0 + i + 2u * kg, kvh), c);
                let k3 = chunk(0u, key_base(table, t0 + i + 3u * kg, kvh), c);
                for (var hh = 0u; hh < HT; hh++) {
                    let h = hs * HT + hh;
                    if (h < gh) {
                        let row = (h * tk + i) * stride + c;
                        g_red[row] = dot8(qv[hh], k0);
                        g_red[row + kg * stride] = dot8(qv[hh], k1);
                        g_red[row + 2u * kg * stride] = dot8(qv[hh], k2);
                        g_red[row + 3u * kg * stride] = dot8(qv[hh], k3);
                    }
                }
            }
            for (; i < cnt; i += kg) {
                let k0 = chunk(0u, key_base(table, t0 + i, kvh), c);
                for (var hh = 0u; hh < HT; hh++) {
                    let h = hs * HT + hh;
                    if (h < gh) {
                        g_red[(h * tk + i) * stride + c] = dot8(qv[hh], k0);
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
            var ks = p.scale;
            if (kv_dtype() >= KV_INT8) {
                ks *= scale_k(key_base(table, t0 + i, kvh));
            }
            g_sc[h * GTK + i] = s * ks;
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
        var beta: array<f32, HT>;
        for (var hh = 0u; hh < HT; hh++) {
            let h = hs * HT + hh;
            if (h < gh) {
                let tm = g_tmx[h];
                let mt = max(m[hh], tm);
                let alpha = exp(m[hh] - mt);
                beta[hh] = exp(tm - mt);
                m[hh] = mt;
                l[hh] *= alpha;
                for (var d = 0u; d < CHUNK; d++) {
                    o[hh][d] *= alpha;
                }
            }
        }
        if (live) {
            var i = g;
            for (; i + 3u * kg < cnt; i += 4u * kg) {
                let b0 = key_base(table, t0 + i, kvh);
                let b1 = key_base(table, t0 + i + kg, kvh);
                let b2 = key_base(table, t0 + i + 2u * kg, kvh);
                let b3 = key_base(table, t0 + i + 3u * kg, kvh);
                let v0 = chunk(1u, b0, c);
                let v1 = chunk(1u, b1, c);
                let v2 = chunk(1u, b2, c);
                let v3 = chunk(1u, b3, c);
                // Quantized V: the row scale rides on the softmax weight.
                let sv = vec4<f32>(scale_v(b0), scale_v(b1), scale_v(b2), scale_v(b3));
                for (var hh = 0u; hh < HT; hh++) {
                    let h = hs * HT + hh;
                    if (h < gh) {
                        let pb = h * GTK + i;
                        let e = beta[hh] * vec4<f32>(g_pe[pb], g_pe[pb + kg], g_pe[pb + 2u * kg], g_pe[pb + 3u * kg]);
                        l[hh] += (e.x + e.y) + (e.z + e.w);
                        let w = e * sv;
                        for (var d = 0u; d < CHUNK; d++) {
                            o[hh][d] = fma(w.w, v3[d], fma(w.z, v2[d], fma(w.y, v1[d], fma(w.x, v0[d], o[hh][d]))));
                        }
                    }
                }
            }
            for (; i < cnt; i += kg) {
                let b0 = key_base(table, t0 + i, kvh);
                let v0 = chunk(1u, b0, c);
                let sv = scale_v(b0);
                for (var hh = 0u; hh < HT; hh++) {
                    let h = hs * HT + hh;
                    if (h < gh) {
                        let e = beta[hh] * g_pe[h * GTK + i];
                        l[hh] += e;
                        for (var d = 0u; d < CHUNK; d++) {
                            o[hh][d] = fma(e * sv, v0[d], o[hh][d]);
                        }
                    }
                }
            }
        }
    }
    // Per head: sum the key groups' outputs (g_red[slot · head_dim + d]) and running sums.
    let slot = lid / nl;
    for (var hh = 0u; hh < min(HT, gh); hh++) {
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
