// silu_mul: out = silu(gate) · up, silu(g) = g · sigmoid(g) (body: ops/gate_mul_body.wgsl).
fn act(g: f32) -> f32 {
    return g / (1.0 + exp(-g));
}

@compute @workgroup_size(WG)
fn silu_mul(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    gate_mul_run(lid, wid, nwg);
}
