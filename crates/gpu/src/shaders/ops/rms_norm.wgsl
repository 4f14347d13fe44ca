// rms_norm: out[r, c] = x[r, c] / sqrt(mean_c(x[r, :]²) + eps) · w[w_offset + c].
// Rows come in groups of `group` (the heads of one token) that are `stride` floats apart in
// both x and out (a token's row of an interleaved q|k|v buffer); row r starts at
// (r / group) · stride + (r % group) · cols. group = rows: plain contiguous rows.
// One workgroup per row (grid folded into x/y). Launcher: src/ops/norm.rs.
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    x_offset: u32,
    out_offset: u32,
    w_offset: u32,
    group: u32,
    stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// 256 threads: a decode row is latency-bound (see add_rms_norm.wgsl).
const WG: u32 = 256u;
const U: u32 = 4u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn rms_norm(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.x + wid.y * nwg.x;
    let r = min(row, p.rows - 1u);
    let rel = (r / p.group) * p.stride + (r % p.group) * p.cols;
    let base = p.x_offset + rel;
    // U independent loads per thread per step (a load consumed before the next one is
    // issued costs a memory round trip each; a decode row is latency-bound).
    var s = 0.0;
    var c = lid;
    for (; c + (U - 1u) * WG < p.cols; c += U * WG) {
        var v: array<f32, U>;
        for (var u = 0u; u < U; u++) {
            v[u] = x[base + c + u * WG];
        }
        for (var u = 0u; u < U; u++) {
            s = fma(v[u], v[u], s);
        }
    }
    for (; c < p.cols; c += WG) {
        let v = x[base + c];
        s = fma(v, v, s);
    }
    red[lid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            red[lid] += red[lid + k];
        }
        workgroupBarrier();
    }
    if (row >= p.rows) {
        return;
    }
    let inv = 1.0 / sqrt(red[0] / f32(p.cols) + p.eps);
    let ob = p.out_offset + rel;
    c = lid;
    for (; c + (U - 1u) * WG < p.cols; c += U * WG) {
        var y: array<f32, U>;
        for (var u = 0u; u < U; u++) {
            let k = c + u * WG;
            y[u] = x[base + k] * inv * w[p.w_offset + k];
        }
        for (var u = 0u; u < U; u++) {
            out[ob + c + u * WG] = y[u];
        }
    }
    for (; c < p.cols; c += WG) {
        out[ob + c] = x[base + c] * inv * w[p.w_offset + c];
    }
}
