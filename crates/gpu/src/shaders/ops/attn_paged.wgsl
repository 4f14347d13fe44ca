// attn_paged: causal grouped-query attention (body: ops/attn_body.wgsl), one workgroup per
// (query head, query token) over all its keys; query j's output goes to out_offset (`extra`)
// + j · n_heads · head_dim. Launcher: src/ops/attention.rs.
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn attn_paged(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let h = wid.x;
    let j = wid.y;
    let hd = p.head_dim;
    let r = key_range(j);
    let ml = attend(lid, h, j, r.x, r.y);
    let ob = p.extra + (j * (p.heads & 0xFFFFu) + h) * hd;
    for (var k = 0u; k < DPT; k++) {
        let d = lid + k * WG;
        if (d < hd) {
            out[ob + d] = acc[k] / ml.y;
        }
    }
}
