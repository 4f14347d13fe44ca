// gelu_tanh_mul: out[t, c] = gelu_tanh(gate[t, c]) · up[t, c] for c < width, with
// gelu_tanh(g) = 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))); the tanh argument is clamped
// where tanh is ±1 in f32, since some drivers overflow exp inside tanh.
// gate and up of token t sit side by side in an interleaved row of gu:
// gate at gu_offset + t · stride + c, up `width` floats later; out is contiguous
// (out_offset + t · width + c). One thread per output. Launcher: src/ops/elementwise.rs.
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

@compute @workgroup_size(WG)
fn gelu_tanh_mul(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let at = p.gu_offset + (i / p.width) * p.stride + i % p.width;
    let g = gu[at];
    out[p.out_offset + i] = 0.5 * g * (1.0 + tanh(clamp(0.7978846 * (g + 0.044715 * g * g * g), -15.0, 15.0))) * gu[at + p.width];
}
