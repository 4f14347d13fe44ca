// gelu_tanh_mul: gate[i] = act(gate[i]) · up[i] in place, with gelu_tanh(g) = 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))); the tanh argument is clamped where tanh is ±1 in f32, since some drivers overflow exp inside tanh.
// One thread per element. Launcher: src/ops/elementwise.rs.
struct Params {
    n: u32,
    gate_offset: u32,
    up_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
    _pad4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

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
    let g = gate[p.gate_offset + i];
    gate[p.gate_offset + i] = 0.5 * g * (1.0 + tanh(clamp(0.7978846 * (g + 0.044715 * g * g * g), -15.0, 15.0))) * up[p.up_offset + i];
}
