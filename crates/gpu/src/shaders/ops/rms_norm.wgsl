// rms_norm: out[r, c] = x[r, c] / sqrt(mean_c(x[r, :]²) + eps) · w[w_offset + c].
// One workgroup per row (grid folded into x/y). Launcher: src/ops/norm.rs.
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    x_offset: u32,
    out_offset: u32,
    w_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn rms_norm(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.x + wid.y * nwg.x;
    let base = p.x_offset + min(row, p.rows - 1u) * p.cols;
    var s = 0.0;
    for (var c = lid; c < p.cols; c += WG) {
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
    let ob = p.out_offset + row * p.cols;
    for (var c = lid; c < p.cols; c += WG) {
        out[ob + c] = x[base + c] * inv * w[p.w_offset + c];
    }
}
