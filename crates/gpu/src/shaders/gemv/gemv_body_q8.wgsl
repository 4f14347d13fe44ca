// GEMV body with 8-bit activations (variant Dp4a): the tiles of q8_tile.wgsl over one
// token's x, rows reduced by reduce_rows.
fn gemv_run(ids: Ids) {
    let wg_row0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * NR;
    if (wg_row0 >= p.rows) {
        return;
    }
    let lg = ids.lid % GW;
    let rows = weight_rows(min(vec4<u32>(wg_row0 + 4u * (ids.lid / GW))
        + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.rows - 1u)));
    let acc = q8_rows_acc(ids, rows, p.x_offset, lg);
    reduce_rows(ids, acc * x_end(ids), wg_row0);
}
