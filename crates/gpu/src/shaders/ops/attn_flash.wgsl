// attn_flash: causal prefill attention on cooperative matrices (tensor cores), f16 paged
// KV cache. One workgroup per (query head h, block of up to BQ = 64 consecutive query
// tokens of one sequence); subgroup s owns queries 16 s .. 16 s + 15 of the block. Keys go
// in tiles of BK = 32 through workgroup memory (f16), shared by the block's queries. Two
// passes over the keys: the first finds each query's softmax max m and sum l, the second
// forms P = exp(S − m) / l exactly and accumulates O = P V. So O never needs rescaling
// (accumulators cannot be scaled per row), at the price of computing S = Q Kᵀ twice.
// Masks: keys t ≤ pos and, with a window w > 0, t > pos − w.
// Layouts (f16, pitch LQ = MAX_HD + 8 halves, so rows stay 16-byte aligned and shift
// banks): ta holds the Q rows (query i, dim d at i LQ + d), then per subgroup a 16 x BK P
// tile (row major, pitch LP = BK); tb the K rows, then the V rows (key c, dim d at c LQ + d);
// ts per subgroup a 16 x BK f32 tile of S, column major (query i, key c at c 16 + i), also
// the staging of each finished 16 x 16 O tile. A lane owns query row lane / 2 and keys
// (lane % 2) 16 .. + 16 of a tile for the softmax.
// Params and bindings as attn_prefill (blocks: (first token, count ≤ BQ) pairs). head_dim
// % 16 == 0 and ≤ MAX_HD (a define). Launcher: src/ops/attention_flash.rs.
struct Params {
    heads: u32, // n_heads | n_kv_heads << 16
    q_stride: u32,
    head_dim: u32,
    scale: f32,
    window: u32, // window (low 30 bits) | cache dtype << 30 (f16 only)
    meta_offset: u32,
    blocks_offset: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> seqs: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 128u;
const BQ: u32 = 64u;
const BK: u32 = 32u;
const BLOCK: u32 = 16u;
const LQ: u32 = MAX_HD + 8u;
const LP: u32 = BK;
const PBASE: u32 = BQ * LQ;
const VBASE: u32 = BK * LQ;
const ST: u32 = 16u * BK;

var<workgroup> ta: array<f16, BQ * LQ + 4u * 16u * LP>;
var<workgroup> tb: array<f16, 2u * BK * LQ>;
var<workgroup> ts: array<f32, 4u * ST>;
var<workgroup> kbase: array<u32, BK>;
var<workgroup> stat: array<f32, 2u * WG>;

// Per-block values every function needs.
struct Blk {
    j0: u32,
    nq: u32,
    pos0: u32,
    table: u32,
    kvh: u32,
    lo: u32,
    last: u32,
}

// The cache slot of key t0 + lid (threads < BK; clamped to the block's last key). Loaded
// one tile ahead, so its latency hides behind the current tile's work.
fn key_slot(lid: u32, b: Blk, t0: u32) -> u32 {
    let t = min(t0 + min(lid, BK - 1u), b.last);
    return seqs[b.table + t / BLOCK] * BLOCK + t % BLOCK;
}

// The cache half index of key lid's row from its slot into kbase (threads < BK).
fn key_bases(lid: u32, b: Blk, slot: u32) {
    if (lid < BK) {
        let n_kv = p.heads >> 16u;
        kbase[lid] = (slot * n_kv + b.kvh) * p.head_dim;
    }
}

// vec4 e (8 halves) of the tile's K or V rows, zero past `last` or past head_dim.
fn kv_vec(is_v: bool, b: Blk, t0: u32, e: u32) -> vec4<u32> {
    let hv = p.head_dim / 8u;
    let c = min(e / hv, BK - 1u);
    let i = kbase[c] / 8u + e % hv;
    var w: vec4<u32>;
    if (is_v) {
        w = vc[i];
    } else {
        w = kc[i];
    }
    return select(vec4<u32>(0u), w, e < BK * hv && t0 + c <= b.last);
}

fn put_vec(base: u32, b: Blk, e: u32, w: vec4<u32>) {
    let hv = p.head_dim / 8u;
    if (e < BK * hv) {
        let o = base + (e / hv) * LQ + (e % hv) * 8u;
        for (var k = 0u; k < 4u; k++) {
            // f16 -> f32 -> f16 is exact (bitcast<vec2<f16>> trips wgpu's WGSL front end).
            let h2 = unpack2x16float(w[k]);
            tb[o + 2u * k] = f16(h2.x);
            tb[o + 2u * k + 1u] = f16(h2.y);
        }
    }
}

// Keys t0 .. t0 + BK of the K (and, with `with_v`, V) cache into tb as f16. Every load of
// the tile issues before the first store (4 vec4 per thread at head_dim 128): a load used
// right away would cost an L2 round trip each.
fn stage_kv(lid: u32, b: Blk, t0: u32, with_v: bool) {
    let e0 = lid;
    let e1 = lid + WG;
    let e2 = lid + 2u * WG;
    let e3 = lid + 3u * WG;
    let k0 = kv_vec(false, b, t0, e0);
    let k1 = kv_vec(false, b, t0, e1);
    let k2 = kv_vec(false, b, t0, e2);
    let k3 = kv_vec(false, b, t0, e3);
    var v0 = vec4<u32>(0u);
    var v1 = vec4<u32>(0u);
    var v2 = vec4<u32>(0u);
    var v3 = vec4<u32>(0u);
    if (with_v) {
        v0 = kv_vec(true, b, t0, e0);
        v1 = kv_vec(true, b, t0, e1);
        v2 = kv_vec(true, b, t0, e2);
        v3 = kv_vec(true, b, t0, e3);
    }
    put_vec(0u, b, e0, k0);
    put_vec(0u, b, e1, k1);
    put_vec(0u, b, e2, k2);
    put_vec(0u, b, e3, k3);
    if (with_v) {
        put_vec(VBASE, b, e0, v0);
        put_vec(VBASE, b, e1, v1);
        put_vec(VBASE, b, e2, v2);
        put_vec(VBASE, b, e3, v3);
    }
}

// Element e (query e / head_dim, dim e % head_dim) of the block's Q rows (0 past them).
fn q_at(b: Blk, h: u32, e: u32) -> f32 {
    let hd = p.head_dim;
    let i = min(e / hd, b.nq - 1u);
    let v = q[(b.j0 + i) * p.q_stride + h * hd + e % hd];
    return select(0.0, v, e / hd < b.nq);
}

fn q_put(e: u32, v: f32) {
    let hd = p.head_dim;
    if (e < BQ * hd) {
        ta[(e / hd) * LQ + e % hd] = f16(v);
    }
}

// S = Q Kᵀ of subgroup sg's 16 queries and the tile's BK keys into its ts tile.
fn scores(sg: u32) {
    var s0 = coop_mat16x16<f32, C>();
    var s1 = coop_mat16x16<f32, C>();
    for (var d = 0u; d < p.head_dim; d += 16u) {
        // coopLoadT: row major (Q: (query, d) at i LQ + d); coopLoad: column major (Kᵀ:
        // (d, key) at key LQ + d).
        let a = coopLoadT<coop_mat16x16<f16, A>>(&ta[sg * 16u * LQ + d], LQ);
        let b0 = coopLoad<coop_mat16x16<f16, B>>(&tb[d], LQ);
        let b1 = coopLoad<coop_mat16x16<f16, B>>(&tb[16u * LQ + d], LQ);
        s0 = coopMultiplyAdd(a, b0, s0);
        s1 = coopMultiplyAdd(a, b1, s1);
    }
    coopStore(s0, &ts[sg * ST], 16u);
    coopStore(s1, &ts[sg * ST + 256u], 16u);
}

// Tile t0's keys staged (K, and V with `with_v`) and subgroup sg's scores in its ts tile;
// returns the next tile's slot (loaded while this tile stages). Uniform: holds barriers.
fn tile_scores(lid: u32, sg: u32, b: Blk, t0: u32, slot: u32, with_v: bool) -> u32 {
    key_bases(lid, b, slot);
    workgroupBarrier();
    let next = key_slot(lid, b, t0 + BK);
    stage_kv(lid, b, t0, with_v);
    workgroupBarrier();
    scores(sg);
    workgroupBarrier();
    return next;
}

// Whether query row i of the block (position pos) sees key t.
fn visible(b: Blk, pos: u32, t: u32) -> bool {
    let window = p.window & 0x3FFFFFFFu;
    return t <= pos && (window == 0u || t + window > pos);
}

// O += P V for subgroup sg: its P tile (16 x BK) times the V tile's dims d0 .. d0 + 16.
fn pv(sg: u32, d0: u32, o: coop_mat16x16<f32, C>) -> coop_mat16x16<f32, C> {
    var r = o;
    let pa = PBASE + sg * 16u * LP;
    let a0 = coopLoadT<coop_mat16x16<f16, A>>(&ta[pa], LP);
    let a1 = coopLoadT<coop_mat16x16<f16, A>>(&ta[pa + 16u], LP);
    let b0 = coopLoadT<coop_mat16x16<f16, B>>(&tb[VBASE + d0], LQ);
    let b1 = coopLoadT<coop_mat16x16<f16, B>>(&tb[VBASE + 16u * LQ + d0], LQ);
    r = coopMultiplyAdd(a0, b0, r);
    r = coopMultiplyAdd(a1, b1, r);
    return r;
}

// Store O tile (dims d0 .. d0 + 16) of subgroup sg to the output (valid queries only).
// Uniform: holds barriers.
fn emit(o: coop_mat16x16<f32, C>, b: Blk, h: u32, sg: u32, lane: u32, d0: u32) {
    coopStore(o, &ts[sg * ST], 16u);
    workgroupBarrier();
    let n_heads = p.heads & 0xFFFFu;
    for (var k = 0u; k < 8u; k++) {
        let e = lane * 8u + k;
        let i = e % 16u;
        let d = e / 16u;
        let qi = sg * 16u + i;
        if (qi < b.nq && d0 + d < p.head_dim) {
            let j = b.j0 + qi;
            let o = p.out_offset + (j * n_heads + h) * p.head_dim + d0 + d;
            out[o] = ts[sg * ST + d * 16u + i];
        }
    }
    workgroupBarrier();
}

fn attn_flash_run(ids: Ids) {
    let lid = ids.lid;
    let sg = ids.sg;
    let lane = lid % 32u;
    let h = ids.wid.x;
    let hd = p.head_dim;
    let n_heads = p.heads & 0xFFFFu;
    let n_kv = p.heads >> 16u;
    var b: Blk;
    b.j0 = seqs[p.blocks_offset + 2u * ids.wid.y];
    b.nq = seqs[p.blocks_offset + 2u * ids.wid.y + 1u];
    b.pos0 = seqs[p.meta_offset + 2u * b.j0];
    b.table = seqs[p.meta_offset + 2u * b.j0 + 1u];
    b.kvh = h / (n_heads / n_kv);
    b.last = b.pos0 + b.nq - 1u;
    let window = p.window & 0x3FFFFFFFu;
    b.lo = 0u;
    if (window > 0u && b.pos0 + 1u > window) {
        b.lo = b.pos0 + 1u - window;
    }
    // Q rows as f16, zero past the block's queries; four loads in flight per thread.
    for (var e = lid; e < BQ * hd; e += 4u * WG) {
        let v0 = q_at(b, h, e);
        let v1 = q_at(b, h, e + WG);
        let v2 = q_at(b, h, e + 2u * WG);
        let v3 = q_at(b, h, e + 3u * WG);
        q_put(e, v0);
        q_put(e + WG, v1);
        q_put(e + 2u * WG, v2);
        q_put(e + 3u * WG, v3);
    }
    // This lane's softmax row and key half.
    let ri = lane / 2u;
    let c0 = (lane % 2u) * 16u;
    let pos = b.pos0 + min(sg * 16u + ri, b.nq - 1u);
    let sb = sg * ST;
    // Pass 1: each lane's running max and sum over its key half.
    var m = -3.0e38;
    var l = 0.0;
    var slot = key_slot(lid, b, b.lo);
    for (var t0 = b.lo; t0 <= b.last; t0 += BK) {
        slot = tile_scores(lid, sg, b, t0, slot, false);
        var mt = m;
        for (var c = c0; c < c0 + 16u; c++) {
            if (visible(b, pos, t0 + c)) {
                mt = max(mt, ts[sb + c * 16u + ri] * p.scale);
            }
        }
        l *= exp(m - mt);
        for (var c = c0; c < c0 + 16u; c++) {
            if (visible(b, pos, t0 + c)) {
                l += exp(ts[sb + c * 16u + ri] * p.scale - mt);
            }
        }
        m = mt;
    }
    // The two halves of each row meet.
    stat[lid] = m;
    stat[WG + lid] = l;
    workgroupBarrier();
    let mo = stat[lid ^ 1u];
    let lo2 = stat[WG + (lid ^ 1u)];
    let mx = max(m, mo);
    let inv_l = 1.0 / (l * exp(m - mx) + lo2 * exp(mo - mx));
    // Pass 2: P = exp(S − m) / l into the P tiles, O += P V.
    var o0 = coop_mat16x16<f32, C>();
    var o1 = coop_mat16x16<f32, C>();
    var o2 = coop_mat16x16<f32, C>();
    var o3 = coop_mat16x16<f32, C>();
    var o4 = coop_mat16x16<f32, C>();
    var o5 = coop_mat16x16<f32, C>();
    var o6 = coop_mat16x16<f32, C>();
    var o7 = coop_mat16x16<f32, C>();
    let pr = PBASE + sg * 16u * LP + ri * LP;
    slot = key_slot(lid, b, b.lo);
    for (var t0 = b.lo; t0 <= b.last; t0 += BK) {
        slot = tile_scores(lid, sg, b, t0, slot, true);
        for (var c = c0; c < c0 + 16u; c++) {
            var pw = 0.0;
            if (visible(b, pos, t0 + c)) {
                pw = exp(ts[sb + c * 16u + ri] * p.scale - mx) * inv_l;
            }
            ta[pr + c] = f16(pw);
        }
        workgroupBarrier();
        o0 = pv(sg, 0u, o0);
        if (hd > 16u) {
            o1 = pv(sg, 16u, o1);
        }
        if (hd > 32u) {
            o2 = pv(sg, 32u, o2);
            o3 = pv(sg, 48u, o3);
        }
        if (hd > 64u) {
            o4 = pv(sg, 64u, o4);
            o5 = pv(sg, 80u, o5);
            o6 = pv(sg, 96u, o6);
            o7 = pv(sg, 112u, o7);
        }
        workgroupBarrier();
    }
    emit(o0, b, h, sg, lane, 0u);
    if (hd > 16u) {
        emit(o1, b, h, sg, lane, 16u);
    }
    if (hd > 32u) {
        emit(o2, b, h, sg, lane, 32u);
        emit(o3, b, h, sg, lane, 48u);
    }
    if (hd > 64u) {
        emit(o4, b, h, sg, lane, 64u);
        emit(o5, b, h, sg, lane, 80u);
        emit(o6, b, h, sg, lane, 96u);
        emit(o7, b, h, sg, lane, 112u);
    }
}

@compute @workgroup_size(WG)
fn attn_flash(ids: Ids) {
    attn_flash_run(ids);
}
