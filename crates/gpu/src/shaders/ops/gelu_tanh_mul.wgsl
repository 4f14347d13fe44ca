// gelu_tanh_mul: out = gelu_tanh(gate) · up (body: ops/gate_mul_body.wgsl), with
// gelu_tanh(g) = 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))); the tanh argument is clamped
// where tanh is ±1 in f32, since some drivers overflow exp inside tanh.
fn act(g: f32) -> f32 {
    return 0.5 * g * (1.0 + tanh(clamp(0.7978846 * (g + 0.044715 * g * g * g), -15.0, 15.0)));
}

@compute @workgroup_size(WG)
fn gelu_tanh_mul(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    gate_mul_run(lid, wid, nwg);
}
