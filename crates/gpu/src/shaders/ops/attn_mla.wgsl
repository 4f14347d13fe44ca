// attn_mla's entry (attn_mla_body.wgsl): partials, when split, go to dst for attn_combine.
@group(0) @binding(6) var<storage, read_write> dst: array<f32>;

fn attn_mla_done(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) {}

@compute @workgroup_size(WG)
fn attn_mla(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    attn_mla_run(lid, wid, nwg);
}
