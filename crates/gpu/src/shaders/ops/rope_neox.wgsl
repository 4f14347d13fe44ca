// rope_neox: half-split pairs (i, i + half), HF checkpoints (body: ops/rope_body.wgsl).
fn pair(i: u32) -> vec2<u32> {
    return vec2<u32>(i, i + p.half);
}

@compute @workgroup_size(WG)
fn rope_neox(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    rope_run(lid, wid, nwg);
}
