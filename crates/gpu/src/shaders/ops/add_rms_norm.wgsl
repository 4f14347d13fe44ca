// add_rms_norm: the residual add fused with the next RMSNorm. Per row r:
// h[r] += src[r]; out[out_offset + r] = h[r] / sqrt(mean(h[r]²) + eps) · w[w_offset ..].
// Each thread reads back only the values it wrote itself. One workgroup per row (grid
// folded into x/y). A decode step runs one row per dispatch, so the kernel is latency-bound:
// 256 threads with U independent loads each per iteration (64 threads looping 64 times
// took ~50 µs a row on an H200). Launcher: src/ops/norm.rs.
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    w_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> h: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
const U: u32 = 4u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn add_rms_norm(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.x + wid.y * nwg.x;
    let live = row < p.rows;
    let base = min(row, p.rows - 1u) * p.cols;
    var s = 0.0;
    var c = lid;
    for (; c + (U - 1u) * WG < p.cols; c += U * WG) {
        var v: array<f32, U>;
        for (var u = 0u; u < U; u++) {
            let i = base + c + u * WG;
            v[u] = h[i] + src[i];
        }
        for (var u = 0u; u < U; u++) {
            if (live) {
                h[base + c + u * WG] = v[u];
            }
            s = fma(v[u], v[u], s);
        }
    }
    for (; c < p.cols; c += WG) {
        let v = h[base + c] + src[base + c];
        if (live) {
            h[base + c] = v;
        }
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
    if (!live) {
        return;
    }
    let inv = 1.0 / sqrt(red[0] / f32(p.cols) + p.eps);
    let ob = p.out_offset + base;
    c = lid;
    for (; c + (U - 1u) * WG < p.cols; c += U * WG) {
        var y: array<f32, U>;
        for (var u = 0u; u < U; u++) {
            let k = c + u * WG;
            y[u] = h[base + k] * inv * w[p.w_offset + k];
        }
        for (var u = 0u; u < U; u++) {
            out[ob + c + u * WG] = y[u];
        }
    }
    for (; c < p.cols; c += WG) {
        out[ob + c] = h[base + c] * inv * w[p.w_offset + c];
    }
}
