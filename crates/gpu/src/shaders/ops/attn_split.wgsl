// attn_split: split-K (flash-decoding) pass of long-context attention (body:
// ops/attn_body.wgsl). Workgroup (head h, token j, split s) attends over key positions
// lo + s · S .. lo + (s + 1) · S (S = `extra`, clipped to the query's keys) and writes its
// partial (max score, Σ exp, unnormalised Σ exp · v: head_dim + 2 floats) to
// part[((j · n_heads + h) · n_splits + s) · (head_dim + 2)]; attn_combine merges them.
// Launcher: src/ops/attention_split.rs.
@group(0) @binding(5) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(WG)
fn attn_split(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let h = wid.x;
    let j = wid.y;
    let s = wid.z;
    let hd = p.head_dim;
    let r = key_range(j);
    let k0 = min(r.x + s * p.extra, r.y);
    let k1 = min(k0 + p.extra, r.y);
    let ml = attend(lid, h, j, k0, k1);
    let pb = ((j * (p.heads & 0xFFFFu) + h) * nwg.z + s) * (hd + 2u);
    if (lid == 0u) {
        part[pb] = ml.x;
        part[pb + 1u] = ml.y;
    }
    for (var k = 0u; k < DPT; k++) {
        let d = lid + k * WG;
        if (d < hd) {
            part[pb + 2u + d] = acc[k];
        }
    }
}
