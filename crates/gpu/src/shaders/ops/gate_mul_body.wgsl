// gate_mul body, shared by silu_mul and gelu_tanh_mul: out[t, c] = act(gate[t, c]) · up[t, c]
// for c < width. gate and up of token t sit side by side in an interleaved row of gu:
// gate at gu_offset + t · stride + c, up `width` floats later; out is contiguous
// (out_offset + t · width + c). One thread per output. Each kernel file defines `act`.
// Launcher: src/ops/elementwise.rs.
struct Params {
    n: u32,
    width: u32,
    stride: u32,
    gu_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

fn gate_mul_run(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let at = p.gu_offset + (i / p.width) * p.stride + i % p.width;
    out[p.out_offset + i] = act(gu[at]) * gu[at + p.width];
}
