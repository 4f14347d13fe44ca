// MoE combine: out[t, c] (+)= sum over token t's top_k slots of weight · y[slot, c].
// Accumulates onto out (the shared expert's output) when `accumulate` is 1, else overwrites.
// Launcher: src/ops/moe.rs.
struct Params {
    n_tokens: u32,
    width: u32,
    top_k: u32,
    y_stride: u32,
    accumulate: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> wts: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn moe_combine(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.n_tokens * p.width) {
        return;
    }
    let t = i / p.width;
    let c = i % p.width;
    var acc = select(0.0, out[i], p.accumulate == 1u);
    for (var j = 0u; j < p.top_k; j++) {
        let s = t * p.top_k + j;
        acc += wts[s] * y[s * p.y_stride + c];
    }
    out[i] = acc;
}
