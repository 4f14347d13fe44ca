// The trellis tile GEMV's placement (gemv_body_trellis.wgsl) for MoE slots, with the
// params of moe_gemv_body.wgsl: rows = all stacked rows, n_tokens = rows per matrix,
// row_offset = slots per x row, out_stride = floats between slots, out_offset = matrices
// per expert. Slot s (workgroup y) multiplies stacked matrix moe_ids[s / parts] * parts +
// s % parts; workgroup x takes that matrix's tile rows x * per ..
// Grid: x = ceil(rows per matrix / (16 per)), y = slots.
struct TrIo {
    tr0: u32,    // the workgroup's first tile row (in the stacked weight)
    tr_end: u32, // end of the matrix's tile rows
    xb: u32,     // vec4 index of the slot's x row
    sb: u32,     // vec4 index of the matrix's input-side scales (trellis_x_hadamard)
    out0: u32,   // out index of the first tile row's row 0
}

fn tr_io(ids: Ids, per: u32) -> TrIo {
    let er = p.n_tokens;
    let slot = ids.wid.y;
    let mats = max(p.rows / er, 1u);
    let parts = max(p.out_offset, 1u);
    let m = min(moe_ids[slot / parts] * parts + slot % parts, mats - 1u);
    let lt0 = ids.wid.x * per;
    let xb = p.x_offset + (slot / max(p.row_offset, 1u)) * (p.cols / 4u);
    let sb = m * (p.cols / 4u);
    return TrIo(m * er / 16u + lt0, (m + 1u) * er / 16u, xb, sb, slot * p.out_stride + lt0 * 16u);
}

