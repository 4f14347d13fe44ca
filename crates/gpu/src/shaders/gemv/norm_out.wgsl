// x_end of gemv_norm_out (after x_norm.wgsl): as norm_end.wgsl, and workgroup 0 also
// stores rms_norm(x) · w at binding 5 (cols floats, one token), for the GEMVs after this
// one: the norm needs no dispatch of its own even where several matmuls read it.
@group(0) @binding(5) var<storage, read_write> x_normed: array<vec4<f32>>;

fn x_end(ids: Ids) -> f32 {
    let s = rms_scale(ids);
    if (ids.wid.x + ids.wid.y * ids.nwg.x == 0u) {
        let c4 = p.cols / 4u;
        for (var k = ids.lid; k < c4; k += WG) {
            x_normed[k] = x_group(p.x_offset, k, c4) * nw[k] * s;
        }
    }
    return s;
}
