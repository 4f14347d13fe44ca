// mla_softmax: the causal softmax of a prompt chunk's MLA scores, in place
// (src/ops/attn_mla_gemm.rs), one block of query rows at a time. Row q of the block (query
// row q0 + q of the chunk, token j = (q0 + q) / H) holds the scaled scores of positions
// 0 .. n_pad; token j at position pos = seqs[meta_offset + 2j] sees 0 ..= pos.
// Its row becomes the normalised probabilities, 0 past pos. One workgroup per row (grid
// folded into x/y), tree reductions in workgroup memory.
struct Params {
    n_heads: u32,
    n_pad: u32,
    meta_offset: u32,
    rows: u32, // of this block
    q0: u32,   // the block's first query row
    _p1: u32,
    _p2: u32,
    _p3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seqs: array<u32>;
@group(0) @binding(2) var<storage, read_write> s: array<f32>;

const WG: u32 = 128u;
var<workgroup> red: array<f32, WG>;

// `v` of every thread reduced by max (`is_max`) or sum; every thread gets the result.
fn reduce(lid: u32, v: f32, is_max: bool) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k /= 2u) {
        if (lid < k) {
            let o = red[lid + k];
            red[lid] = select(red[lid] + o, max(red[lid], o), is_max);
        }
        workgroupBarrier();
    }
    let out = red[0];
    workgroupBarrier();
    return out;
}

@compute @workgroup_size(WG)
fn mla_softmax(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = wid.x + wid.y * nwg.x;
    if (q >= p.rows) {
        return;
    }
    let n = min(seqs[p.meta_offset + 2u * ((p.q0 + q) / p.n_heads)] + 1u, p.n_pad);
    let base = q * p.n_pad;
    var m = -3.0e38;
    for (var k = lid; k < n; k += WG) {
        m = max(m, s[base + k]);
    }
    m = reduce(lid, m, true);
    var l = 0.0;
    for (var k = lid; k < n; k += WG) {
        l += exp(s[base + k] - m);
    }
    let inv = 1.0 / reduce(lid, l, false);
    for (var k = lid; k < p.n_pad; k += WG) {
        var v = 0.0;
        if (k < n) {
            v = exp(s[base + k] - m) * inv;
        }
        s[base + k] = v;
    }
}
