// rope_kv_neox: half-split pairs (i, i + half) (body: ops/rope_kv_body.wgsl).
fn pair(i: u32) -> vec2<u32> {
    return vec2<u32>(i, i + half_rot());
}

fn pair_of(e: u32) -> vec2<u32> {
    let half = half_rot();
    if (e < half) {
        return vec2<u32>(e, 0u);
    }
    return vec2<u32>(e - half, 1u);
}

@compute @workgroup_size(WG)
fn rope_kv_neox(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    rope_kv_run(lid, wid, nwg);
}
