// embed_mxfp4: rows of an MXFP4 embedding table for a batch of token ids (decode helpers:
// formats/mxfp4.wgsl; body: embed/embed_body.wgsl; launcher: src/ops/embed.rs).
@compute @workgroup_size(WG)
fn embed_mxfp4(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    embed_run(lid, wid.x);
}
