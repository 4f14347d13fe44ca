// argmax: out[out_offset + r] = the index of the largest value of row r of x (n values at
// x_offset + r · stride); ties go to the lowest index and NaN never wins, like the CPU
// sampler's argmax. One workgroup per row. Launcher: src/ops/argmax.rs.
struct Params {
    n: u32,
    rows: u32,
    x_offset: u32,
    stride: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

// Whether (v, i) beats (bv, bi): larger, or equal with a lower index.
fn beats(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(WG)
fn argmax(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row = wid.x;
    let base = p.x_offset + row * p.stride;
    var bv = -3.4e38;
    var bi = 0xFFFFFFFFu;
    for (var i = lid; i < p.n; i += WG) {
        let v = x[base + i];
        // NaN compares false everywhere, so it is never taken.
        if (beats(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k && beats(best_v[lid + k], best_i[lid + k], best_v[lid], best_i[lid])) {
            best_v[lid] = best_v[lid + k];
            best_i[lid] = best_i[lid + k];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[p.out_offset + row] = select(best_i[0], 0u, best_i[0] == 0xFFFFFFFFu);
    }
}
