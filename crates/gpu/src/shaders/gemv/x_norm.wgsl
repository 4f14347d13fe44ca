// GEMV input hook of gemv_norm: x is the residual stream and the kernel multiplies
// rms_norm(x) · w, so no separate norm dispatch runs before it. Binding 4 holds the norm
// weight (cols floats) and then its epsilon (vec4 cols / 4, x). x_in hands out x · w and
// sums the squares of the raw x it loads (the fill of the x tiles reads each element once
// per workgroup); rms_scale turns the workgroup's sum into 1 / rms, which scales the
// finished dot products (they are linear in x). A separate pass over x cost as much as the
// norm dispatch it replaced. x_end comes from norm_end.wgsl, or from norm_out.wgsl, which
// also stores the normed x.
@group(0) @binding(4) var<storage, read> nw: array<vec4<f32>>;
var<workgroup> nred: array<f32, WG>;
var<private> x_ss: f32;

fn x_in(base: u32, k: u32, c4: u32) -> vec4<f32> {
    let v = x_group(base, k, c4);
    x_ss += dot(v, v);
    return v * nw[min(k, c4 - 1u)];
}

fn rms_scale(ids: Ids) -> f32 {
    nred[ids.lid] = x_ss;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (ids.lid < w) {
            nred[ids.lid] += nred[ids.lid + w];
        }
        workgroupBarrier();
    }
    return inverseSqrt(nred[0] / f32(p.cols) + nw[p.cols / 4u].x);
}

// x rows are one row width apart.
const X_ROW: u32 = 1u;
