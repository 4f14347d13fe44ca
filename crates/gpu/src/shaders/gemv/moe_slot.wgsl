// A MoE GEMV workgroup's share (moe_gemv_body, moe_gemv_body_q8; params as
// moe_gemv_body.wgsl describes them): workgroup (x, y) computes rows x · NR .. of slot y's
// matrix, stacked matrix moe_ids[y / parts] · parts + y % parts, against x row
// y / row_offset. Not live past the matrix's last row block (a uniform early return).
// The store hook (moe_store.wgsl, moe_store_combine.wgsl) defines slot_parts and moe_store.
struct MoeSlot {
    live: bool,
    slot: u32,
    // First local row of the workgroup, and the weight rows of this thread's row quad.
    lr0: u32,
    rows: vec4<u32>,
    // vec4 index of the slot's x row.
    xb: u32,
}

fn moe_slot(ids: Ids) -> MoeSlot {
    var m: MoeSlot;
    let er = p.n_tokens;
    m.lr0 = ids.wid.x * NR;
    m.live = m.lr0 < er;
    if (!m.live) {
        return m;
    }
    m.slot = ids.wid.y;
    let mats = max(p.rows / er, 1u);
    let parts = slot_parts();
    let base = min(moe_ids[m.slot / parts] * parts + m.slot % parts, mats - 1u) * er;
    let local = min(vec4<u32>(m.lr0 + 4u * (ids.lid / GW)) + vec4<u32>(0u, 1u, 2u, 3u),
        vec4<u32>(er - 1u));
    m.rows = local + vec4<u32>(base);
    m.xb = p.x_offset + (m.slot / max(p.row_offset, 1u)) * (p.cols / 4u) * X_ROW;
    return m;
}
