// attn_mla_combine: split attn_mla (attn_mla_body.wgsl) with attn_combine folded in. Each
// workgroup stores its HG heads' partials to dst (from 0, as the split attn_mla does), then
// counts its arrival at (token j, head group); the workgroup completing the group's splits
// merges their partials into out[out_offset + (j · H + h) · r ..] with attn_combine's
// arithmetic (the same floats) and resets the counter. dst is coherent and the count is a
// device-scope release/acquire pair (storageBarrier), so the other splits' partials are
// visible to it. Launcher: src/ops/attn_mla.rs.
@group(0) @binding(6) @coherent var<storage, read_write> dst: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> arrivals: array<atomic<u32>>;

var<workgroup> completes: u32;

fn attn_mla_done(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) {
    let j = wid.y;
    let c = j * nwg.x + wid.x;
    let splits = nwg.z;
    storageBarrier();
    if (lid == 0u) {
        completes = u32(atomicAdd(&arrivals[c], 1u) == splits - 1u);
    }
    if (workgroupUniformLoad(&completes) == 0u) {
        return;
    }
    storageBarrier();
    let r = p.r;
    let h0 = wid.x * HG;
    let nh = min(HG, p.n_heads - h0);
    for (var g = 0u; g < nh; g++) {
        let qi = j * p.n_heads + h0 + g;
        let base = qi * splits * (r + 2u);
        var mx = -3.0e38;
        for (var s = 0u; s < splits; s++) {
            mx = max(mx, dst[base + s * (r + 2u)]);
        }
        var l = 0.0;
        for (var s = 0u; s < splits; s++) {
            let b = base + s * (r + 2u);
            l += exp(dst[b] - mx) * dst[b + 1u];
        }
        let ob = p.out_offset + qi * r;
        for (var d = lid; d < r; d += WG) {
            var a = 0.0;
            for (var s = 0u; s < splits; s++) {
                let b = base + s * (r + 2u);
                a = fma(exp(dst[b] - mx), dst[b + 2u + d], a);
            }
            out[ob + d] = a / l;
        }
    }
    if (lid == 0u) {
        atomicStore(&arrivals[c], 0u);
    }
}

@compute @workgroup_size(WG)
fn attn_mla_combine(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    attn_mla_run(lid, wid, nwg);
}
