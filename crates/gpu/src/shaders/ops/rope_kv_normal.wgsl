// rope_kv_normal: adjacent pairs (2i, 2i + 1) (body: ops/rope_kv_body.wgsl).
fn pair(i: u32) -> vec2<u32> {
    return vec2<u32>(2u * i, 2u * i + 1u);
}

fn pair_of(e: u32) -> vec2<u32> {
    return vec2<u32>(e / 2u, e & 1u);
}

@compute @workgroup_size(WG)
fn rope_kv_normal(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    rope_kv_run(lid, wid, nwg);
}
