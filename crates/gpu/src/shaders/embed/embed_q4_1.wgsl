// embed_q4_1: rows of a q4_1 embedding table for a batch of token ids (decode helpers:
// formats/q4_1.wgsl; body: embed/embed_body.wgsl; launcher: src/ops/embed.rs).
@compute @workgroup_size(WG)
fn embed_q4_1(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    embed_run(lid, wid.x);
}
