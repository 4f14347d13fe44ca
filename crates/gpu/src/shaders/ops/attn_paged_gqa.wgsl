// attn_paged_gqa: attn_paged with one workgroup per (kv head, query token) serving all the
// kv head's query heads (body: ops/attn_gqa_body.wgsl); query j's output goes where
// attn_paged puts it, out_offset (`extra`) + j · n_heads · head_dim. Launcher:
// src/ops/attention.rs.
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn gqa_store(j: u32, h: u32, d: u32, v: f32) {
    out[p.extra + (j * (p.heads & 0xFFFFu) + h) * p.head_dim + d] = v;
}

@compute @workgroup_size(WG)
fn attn_paged_gqa(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    gqa_attend(lid, wid.x, wid.y);
}
