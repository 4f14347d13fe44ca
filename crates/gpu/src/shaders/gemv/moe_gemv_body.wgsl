// MoE GEMV: per token slot, rows of the expert the router picked, from one weight holding
// every expert's matrix stacked (expert e's row r is row e * R + r). Same tiling as
// gemv_body.wgsl (x tile in workgroup memory, GW threads per row quad) with the workgroup-
// memory reduction of reduce_shared.wgsl. Params (common/matmul_io.wgsl) are read as: rows = all stacked rows (the
// decode helpers locate scales with it), n_tokens = R (rows per expert), row_offset = slots
// per x row (top_k when every slot of a token reads the token's x, 1 when slot s reads row
// s), out_stride = floats between slots in out, out_offset = parts (matrices per expert:
// slot s multiplies stacked matrix ids[s / parts] * parts + s % parts; 2 for trellis gate
// and up, each with its own sides). The expert id of every slot: `moe_ids`, declared by the
// entry (binding 4, or 5 where the x hook takes 4). The x hooks (x_plain, x_norm, x_silu)
// make the same body moe_gemv, moe_gemv_norm (the RMSNorm before it folded in, x = the
// residual stream) and moe_gemv_silu (x rows are gate|up, X_ROW = 2 row widths each).
// Grid: x = ceil(R / NR) row blocks, y = slots. Launcher: src/ops/moe.rs.

const WG: u32 = 256u;
const TU: u32 = 128u;
const UPT: u32 = TU / GW;
var<workgroup> xs: array<vec4<f32>, TU * 8u>;

fn xs_unit(ul: u32) -> XUnit {
    var r: XUnit;
    r.a0 = xs[ul];
    r.a1 = xs[TU + (ul ^ 1u)];
    r.a2 = xs[2u * TU + (ul ^ 2u)];
    r.a3 = xs[3u * TU + (ul ^ 3u)];
    r.a4 = xs[4u * TU + (ul ^ 4u)];
    r.a5 = xs[5u * TU + (ul ^ 5u)];
    r.a6 = xs[6u * TU + (ul ^ 6u)];
    r.a7 = xs[7u * TU + (ul ^ 7u)];
    let one = vec4<f32>(1.0);
    r.sum = dot((r.a0 + r.a1) + (r.a2 + r.a3) + ((r.a4 + r.a5) + (r.a6 + r.a7)), one);
    return r;
}

fn dot_rows(r: vec4<u32>, u: u32, ul: u32) -> vec4<f32> {
    let xu = xs_unit(ul);
    return vec4<f32>(dot_unit(r.x, u, xu), dot_unit(r.y, u, xu), dot_unit(r.z, u, xu),
        dot_unit(r.w, u, xu));
}

fn moe_gemv_run(ids: Ids) {
    let m = moe_slot(ids);
    if (!m.live) {
        return;
    }
    let lg = ids.lid % GW;
    let units = units_per_row();
    let c4 = p.cols / 4u;
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < units; t0 += TU) {
        // Only the tile's units (a short row loads a fraction of the tile).
        for (var i = ids.lid; i < min(TU, units - t0) * 8u; i += WG) {
            let ul = i / 8u;
            let j = i % 8u;
            xs[j * TU + (ul ^ j)] = x_in(m.xb, t0 * 8u + i, c4);
        }
        workgroupBarrier();
        acc += tile_acc(m.rows, t0, units, lg);
        workgroupBarrier();
    }
    // Row sums (reduce_shared.wgsl) into the slot's output row.
    moe_store(ids, m, reduce_sum(ids, acc * x_end(ids)));
}
