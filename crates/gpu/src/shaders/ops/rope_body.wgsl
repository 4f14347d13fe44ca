// rope body, shared by rope_normal and rope_neox: rotates pair i of every head in place; each
// kernel file defines `pair(i)`, the offsets of the two rotated elements within a head. cs
// holds, per token, the cos of the half angles followed by their sin (host-computed in f64
// like the CPU table). Token t's heads start at x_offset + t · stride (stride ≥ n_heads ·
// head_dim: q and k heads side by side in an interleaved q|k|v row). One thread per
// (token, head, pair). Launcher: src/ops/rope.rs.
struct Params {
    n_tokens: u32,
    n_heads: u32,
    head_dim: u32,
    half: u32,
    cs_offset: u32,
    x_offset: u32,
    stride: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

const WG: u32 = 64u;

fn rope_run(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) {
    let g = (wid.x + wid.y * nwg.x) * WG + lid;
    if (g >= p.n_tokens * p.n_heads * p.half) {
        return;
    }
    let i = g % p.half;
    let th = g / p.half;
    let t = th / p.n_heads;
    let hb = p.x_offset + t * p.stride + (th % p.n_heads) * p.head_dim;
    let ab = pair(i);
    let a = hb + ab.x;
    let b = hb + ab.y;
    let c = cs[p.cs_offset + t * 2u * p.half + i];
    let s = cs[p.cs_offset + t * 2u * p.half + p.half + i];
    let xa = x[a];
    let xb = x[b];
    x[a] = xa * c - xb * s;
    x[b] = xa * s + xb * c;
}
