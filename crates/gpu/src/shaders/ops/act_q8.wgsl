// act_q8: f32 activations [n_tokens, cols] (cols a multiple of 32) as 8-bit units for the
// Dp4a gemv_multi, quantized once per matmul input instead of once per workgroup. One
// thread per (token t, unit u), s = t * units + u: codes at q[2 s] (elements 0..15) and
// q[2 s + 1] (16..31), then from vec4 2 n units the scales, two units per vec4
// ((d, d sum q) of unit s at components 2 (s % 2), + 1, as f32 bits). With perm = 1
// each 8 elements are stored as 0, 2, 4, 6, 1, 3, 5, 7 (the even/odd bytes the nibble
// formats' unit_q8 produce).
// Grid folded into x/y. Launcher: src/ops/act_q8.rs.
struct Params {
    n_tokens: u32,
    cols: u32,
    x_offset: u32, // vec4 index of token 0 in x
    perm: u32,
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

// Eight packed i8 (a: elements 0..3, b: 4..7) as (0, 2, 4, 6) and (1, 3, 5, 7).
fn even_odd(a: u32, b: u32) -> vec2<u32> {
    let m = 0x00FF00FFu;
    let ae = a & m;
    let ao = (a >> 8u) & m;
    let be = b & m;
    let bo = (b >> 8u) & m;
    return vec2<u32>(((ae | (ae >> 8u)) & 0xFFFFu) | ((be | (be >> 8u)) << 16u),
        ((ao | (ao >> 8u)) & 0xFFFFu) | ((bo | (bo >> 8u)) << 16u));
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
    var lo = r.lo;
    var hi = r.hi;
    if (p.perm == 1u) {
        lo = vec4<u32>(even_odd(r.lo.x, r.lo.y), even_odd(r.lo.z, r.lo.w));
        hi = vec4<u32>(even_odd(r.hi.x, r.hi.y), even_odd(r.hi.z, r.hi.w));
    }
    q[2u * s] = lo;
    q[2u * s + 1u] = hi;
    let c = 2u * (s % 2u);
    q[2u * total + s / 2u][c] = bitcast<u32>(r.d.x);
    q[2u * total + s / 2u][c + 1u] = bitcast<u32>(r.d.y);
}
