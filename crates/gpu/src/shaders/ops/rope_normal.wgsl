// rope_normal: adjacent pairs (2i, 2i+1), GGUF llama (body: ops/rope_body.wgsl).
fn pair(i: u32) -> vec2<u32> {
    return vec2<u32>(2u * i, 2u * i + 1u);
}

@compute @workgroup_size(WG)
fn rope_normal(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    rope_run(lid, wid, nwg);
}
