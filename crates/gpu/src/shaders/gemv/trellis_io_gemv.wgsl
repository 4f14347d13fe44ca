// The trellis tile GEMV's placement (gemv_body_trellis.wgsl) for one token: workgroup
// i takes tile rows i * per .. of the chunk, x from p.x_offset, out as store_out places it.
// Grid: ceil(tile rows / per) workgroups, folded into x/y above the dimension limit.
struct TrIo {
    tr0: u32,    // the workgroup's first tile row (in the bound weight)
    tr_end: u32, // end of the tile rows it may read
    xb: u32,     // vec4 index of x's first element
    sb: u32,     // vec4 index of the matrix's input-side scales (trellis_x_hadamard)
    out0: u32,   // out index of the first tile row's row 0
}

fn tr_io(ids: Ids, per: u32) -> TrIo {
    let tr0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * per;
    return TrIo(tr0, p.rows / 16u, p.x_offset, 0u, p.out_offset + p.row_offset + tr0 * 16u);
}

