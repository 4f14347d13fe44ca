// attention body, shared by attn_paged and attn_split (rows: ops/attn_rows.wgsl): one
// (query head, query token) per workgroup against a paged K/V cache, with an online softmax
// over tiles of WG keys (`attend` over a range of key positions leaves the unnormalised
// output in `acc`). Threads split a tile as (key group g, dim chunk c): LANES threads share a
// key row, each loading 8 consecutive dims, so a row is read coalesced and every thread
// keeps several keys' loads in flight (a thread walking a whole row alone was latency-bound:
// ~30 µs per layer on an H200 for a few dozen keys).
// 128 threads: decode runs one workgroup per head, so wider tiles mean more loads in flight.
const WG: u32 = 128u;
const DPT: u32 = MAX_HD / WG;

var<workgroup> qs: array<f32, MAX_HD>;
// Per key of the tile: its score, then its softmax weight.
var<workgroup> sc: array<f32, WG>;
// First K/V value of each key in the tile (the block table is read once per key).
var<workgroup> kbase: array<u32, WG>;
// Partial dot products [key][lane] (lane index skewed by key: conflict-free sums), the
// tile max, then the key groups' output partials [group][dim] (≤ 8 WG floats).
const RED: u32 = 2048u;
var<workgroup> red: array<f32, RED>;
// exp(score − max) per key of the tile, then the groups' running sums.
var<workgroup> pe: array<f32, WG>;

var<private> acc: array<f32, DPT>;

// The fast paths' other three keys of a step from key i (i + groups, i + 2 groups,
// i + 3 groups), clamped into the tile: their loads stay in range, their results are dropped.
fn next3(i: u32, groups: u32, cnt: u32) -> vec3<u32> {
    return min(vec3<u32>(i) + vec3<u32>(1u, 2u, 3u) * groups, vec3<u32>(cnt - 1u));
}

// Largest value of sc[0 .. WG) (all threads, uniform).
fn tile_max(lid: u32, s: f32) -> f32 {
    red[lid] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lid < w) {
            red[lid] = max(red[lid], red[lid + w]);
        }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    return m;
}

// Online softmax of head h of query token j over key positions [k0, k1): returns (max
// score, Σ exp(score − max)) and leaves Σ exp(score − max) · v in `acc` (dims lid + k · WG).
fn attend(lid: u32, h: u32, j: u32, k0: u32, k1: u32) -> vec2<f32> {
    let hd = p.head_dim;
    let n_heads = p.heads & 0xFFFFu;
    let kvh = h / (n_heads / (p.heads >> 16u));
    let table = seqs[p.meta_offset + 2u * j + 1u];
    let qb = p.q_offset + j * p.q_stride + h * hd;
    for (var d = lid; d < hd; d += WG) {
        qs[d] = q[qb + d];
    }
    let nl = lanes();
    let groups = WG / nl;
    // Keys per tile: their partial dots must fit in `red`.
    let tk = min(WG, RED / nl);
    let g = lid / nl;
    let c = lid % nl;
    let live = c * CHUNK < hd;
    // F16 rows of whole chunks take the batched-load path.
    let fast = kv_dtype() == KV_F16 && hd % CHUNK == 0u;
    workgroupBarrier();
    var qc: array<f32, 8>;
    for (var i = 0u; i < CHUNK; i++) {
        qc[i] = select(0.0, qs[min(c * CHUNK + i, hd - 1u)], c * CHUNK + i < hd);
    }
    var m = -3.0e38;
    // Σ exp of this thread's keys (kept by the c = 0 thread of each group).
    var l = 0.0;
    var o: array<f32, 8>;
    for (var t0 = k0; t0 < k1; t0 += tk) {
        let cnt = min(tk, k1 - t0);
        if (lid < cnt) {
            kbase[lid] = key_base(table, t0 + lid, kvh);
        }
        workgroupBarrier();
        // Scores: group g takes keys g, g + groups, ...; four keys per step keep four rows'
        // loads in flight per thread.
        if (live && fast) {
            // Four keys per step (clamped past cnt, their dots dropped), loads first.
            for (var i = g; i < cnt; i += 4u * groups) {
                let n = next3(i, groups, cnt);
                let i1 = n.x;
                let i2 = n.y;
                let i3 = n.z;
                let r0 = k_words(kbase[i], c);
                let r1 = k_words(kbase[i1], c);
                let r2 = k_words(kbase[i2], c);
                let r3 = k_words(kbase[i3], c);
                red[i * nl + (c + i) % nl] = dot8(qc, f16x8(r0));
                if (i + groups < cnt) {
                    red[i1 * nl + (c + i1) % nl] = dot8(qc, f16x8(r1));
                }
                if (i + 2u * groups < cnt) {
                    red[i2 * nl + (c + i2) % nl] = dot8(qc, f16x8(r2));
                }
                if (i + 3u * groups < cnt) {
                    red[i3 * nl + (c + i3) % nl] = dot8(qc, f16x8(r3));
                }
            }
        } else if (live) {
            var i = g;
            for (; i + 3u * groups < cnt; i += 4u * groups) {
                let a0 = dot8(qc, chunk(0u, kbase[i], c));
                let a1 = dot8(qc, chunk(0u, kbase[i + groups], c));
                let a2 = dot8(qc, chunk(0u, kbase[i + 2u * groups], c));
                let a3 = dot8(qc, chunk(0u, kbase[i + 3u * groups], c));
                red[i * nl + (c + i) % nl] = a0;
                red[(i + groups) * nl + (c + i + groups) % nl] = a1;
                red[(i + 2u * groups) * nl + (c + i + 2u * groups) % nl] = a2;
                red[(i + 3u * groups) * nl + (c + i + 3u * groups) % nl] = a3;
            }
            for (; i < cnt; i += groups) {
                red[i * nl + (c + i) % nl] = dot8(qc, chunk(0u, kbase[i], c));
            }
        }
        workgroupBarrier();
        var s = -3.0e38;
        if (lid < cnt) {
            var dsum = 0.0;
            let nc = (hd + CHUNK - 1u) / CHUNK;
            for (var k = 0u; k < nc; k++) {
                dsum += red[lid * nl + (k + lid) % nl];
            }
            s = dsum * (p.scale * scale_k(kbase[lid]));
        }
        workgroupBarrier();
        let mt = max(m, tile_max(lid, s));
        if (lid < cnt) {
            let e = exp(s - mt);
            // Quantized V: the row scale rides on the softmax weight.
            sc[lid] = e * scale_v(kbase[lid]);
            pe[lid] = e;
        }
        let alpha = exp(m - mt);
        l *= alpha;
        for (var i = 0u; i < CHUNK; i++) {
            o[i] *= alpha;
        }
        workgroupBarrier();
        if (live && fast) {
            for (var i = g; i < cnt; i += 4u * groups) {
                let n = next3(i, groups, cnt);
                let i1 = n.x;
                let i2 = n.y;
                let i3 = n.z;
                let r0 = v_words(kbase[i], c);
                let r1 = v_words(kbase[i1], c);
                let r2 = v_words(kbase[i2], c);
                let r3 = v_words(kbase[i3], c);
                let w0 = sc[i];
                let w1 = select(0.0, sc[i1], i + groups < cnt);
                let w2 = select(0.0, sc[i2], i + 2u * groups < cnt);
                let w3 = select(0.0, sc[i3], i + 3u * groups < cnt);
                let v0 = f16x8(r0);
                let v1 = f16x8(r1);
                let v2 = f16x8(r2);
                let v3 = f16x8(r3);
                for (var d = 0u; d < CHUNK; d++) {
                    o[d] = fma(w3, v3[d], fma(w2, v2[d], fma(w1, v1[d], fma(w0, v0[d], o[d]))));
                }
            }
        } else if (live) {
            var i = g;
            for (; i + 3u * groups < cnt; i += 4u * groups) {
                let v0 = chunk(1u, kbase[i], c);
                let v1 = chunk(1u, kbase[i + groups], c);
                let v2 = chunk(1u, kbase[i + 2u * groups], c);
                let v3 = chunk(1u, kbase[i + 3u * groups], c);
                let w0 = sc[i];
                let w1 = sc[i + groups];
                let w2 = sc[i + 2u * groups];
                let w3 = sc[i + 3u * groups];
                for (var d = 0u; d < CHUNK; d++) {
                    o[d] = fma(w3, v3[d], fma(w2, v2[d], fma(w1, v1[d], fma(w0, v0[d], o[d]))));
                }
            }
            for (; i < cnt; i += groups) {
                let v = chunk(1u, kbase[i], c);
                let w = sc[i];
                for (var d = 0u; d < CHUNK; d++) {
                    o[d] = fma(w, v[d], o[d]);
                }
            }
        }
        if (c == 0u) {
            for (var i = g; i < cnt; i += groups) {
                l += pe[i];
            }
        }
        m = mt;
        workgroupBarrier();
    }
    // Sum the key groups' partial outputs (red[g · head_dim + d]) and running sums.
    if (live) {
        for (var i = 0u; i < CHUNK; i++) {
            let d = c * CHUNK + i;
            if (d < hd) {
                red[g * hd + d] = o[i];
            }
        }
    }
    if (c == 0u) {
        pe[g] = l;
    }
    workgroupBarrier();
    var lt = 0.0;
    for (var gi = 0u; gi < groups; gi++) {
        lt += pe[gi];
    }
    for (var k = 0u; k < DPT; k++) {
        let d = lid + k * WG;
        acc[k] = 0.0;
        if (d < hd) {
            for (var gi = 0u; gi < groups; gi++) {
                acc[k] += red[gi * hd + d];
            }
        }
    }
    workgroupBarrier();
    return vec2<f32>(m, lt);
}
