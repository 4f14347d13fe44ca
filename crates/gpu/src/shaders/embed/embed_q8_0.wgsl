// embed_q8_0: rows of a q8_0 embedding table for a batch of token ids (decode helpers:
// formats/q8_0.wgsl; body: embed/embed_body.wgsl; launcher: src/ops/embed.rs).
@compute @workgroup_size(WG)
fn embed_q8_0(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    embed_run(lid, wid.x);
}
