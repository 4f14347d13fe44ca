// GEMV body with 8-bit activations (variant Dp4a): the tiles of q8_tile.wgsl over one
// token's x, rows reduced by reduce_rows.
fn gemv_run(ids: Ids) {
    let wg_row0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * NR;
    if (wg_row0 >= p.rows) {
        return;
    }
    let g = ids.lid / GW;
    let lg = ids.lid % GW;
    let rows = weight_rows(min(vec4<u32>(wg_row0 + 4u * g) + vec4<u32>(0u, 1u, 2u, 3u),
        vec4<u32>(p.rows - 1u)));
    let units = units_per_row();
    let c4 = p.cols / 4u;
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < units; t0 += TU) {
        if (ids.lid < TU) {
            fill_unit(p.x_offset, c4, t0, ids.lid);
        }
        workgroupBarrier();
        if (PAIR_Q8) {
            acc += tile_acc_pairs(rows, t0, units, lg);
        } else {
            acc += tile_acc(rows, t0, units, lg);
        }
        workgroupBarrier();
    }
    reduce_rows(ids, acc * x_end(ids), wg_row0);
}
