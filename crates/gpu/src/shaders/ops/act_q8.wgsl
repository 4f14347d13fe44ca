// act_q8: f32 activations [n_tokens, cols] (cols a multiple of 32) as 8-bit units for the
// Dp4a gemv_multi, quantized once per matmul input instead of once per workgroup. One
// thread per (token t, unit u), s = t * units + u: codes at q[2 s] (elements 0..15) and
// q[2 s + 1] (16..31), then from vec4 2 n units the scales, two units per vec4
// ((d, d sum q) of unit s at components 2 (s % 2), + 1, as f32 bits).
// Grid folded into x/y. Launcher: src/ops/act_q8.rs.
struct Params {
    n_tokens: u32,
    cols: u32,
    x_offset: u32, // vec4 index of token 0 in x
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
    _pad4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> q: array<vec4<u32>>;

const WG: u32 = 64u;

// The input hook quant_unit (q8_act.wgsl) reads through; units never pass the row's end.
fn x_in(base: u32, k: u32, c4: u32) -> vec4<f32> {
    return x[base + k];
}

@compute @workgroup_size(WG)
fn act_q8(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    let units = p.cols / 32u;
    let total = p.n_tokens * units;
    if (s >= total) {
        return;
    }
    let c4 = p.cols / 4u;
    let r = quant_unit(p.x_offset + (s / units) * c4, (s % units) * 8u, c4);
    q[2u * s] = r.lo;
    q[2u * s + 1u] = r.hi;
    let c = 2u * (s % 2u);
    q[2u * total + s / 2u][c] = bitcast<u32>(r.d.x);
    q[2u * total + s / 2u][c + 1u] = bitcast<u32>(r.d.y);
}
