// moe_hadamard_combine: moe_combine for stacked trellis down experts, with their output side
// folded in: out[t] block b (+)= sum over token t's top_k slots s of
// wts[s] * svh[ids[s]] * H(y[s] block b) (H normalized by 1 / sqrt(block)), where moe_combine
// would read moe_hadamard_scale's output. Workgroup b (folded into x/y) takes block b of
// the [n_tokens, width] output; the top_k slot blocks sit side by side in v and one pass
// rotates them all. Accumulates onto out (the shared expert's output) when `accumulate` is
// 1. Bindings (Read4Write layout): 1 y (f32, [slots, width], down's product on Q), 2 svh
// (f32, [mats, width]), 3 ids (u32 per slot), 4 wts (f32 per slot), 5 out (read_write).
// Launcher: ops/moe_hadamard_scale.rs.

struct Params {
    blocks: u32,     // n_tokens * width / block
    block: u32,      // power of two dividing width; top_k * block <= MAX_BLOCK
    norm: f32,       // 1 / sqrt(block)
    width: u32,
    top_k: u32,
    mats: u32,       // rows of svh; ids past them are clamped
    accumulate: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> svh: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read> wts: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn moe_hadamard_combine(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let b = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every thread returns or none does (barriers follow).
    if (b >= p.blocks) {
        return;
    }
    let n = p.block;
    let base = b * n;
    let t = base / p.width;
    let c0 = base % p.width;
    let s0 = t * p.top_k;
    for (var i = lid; i < p.top_k * n; i += WG) {
        let j = i / n;
        v[i] = y[(s0 + j) * p.width + c0 + i % n];
    }
    hadamard_butterfly_n(lid, n, p.top_k * n);
    for (var i = lid; i < n; i += WG) {
        var acc = select(0.0, out[base + i], p.accumulate == 1u);
        for (var j = 0u; j < p.top_k; j++) {
            let s = s0 + j;
            let e = min(ids[s], p.mats - 1u);
            acc += wts[s] * (v[j * n + i] * p.norm * svh[e * p.width + c0 + i]);
        }
        out[base + i] = acc;
    }
}
