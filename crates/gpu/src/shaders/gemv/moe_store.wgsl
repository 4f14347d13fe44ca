// MoE GEMV output hook (moe_gemv, moe_gemv_norm, moe_gemv_silu): each slot's rows into out.
// Params' out_offset = parts (matrices per expert, moe_slot.wgsl).
fn slot_parts() -> u32 {
    return max(p.out_offset, 1u);
}

// Store row lid's total t (threads lid < NR) into the slot's output row.
fn moe_store(ids: Ids, m: MoeSlot, t: f32) {
    let row = m.lr0 + ids.lid;
    if (ids.lid < NR && row < p.n_tokens) {
        out[m.slot * p.out_stride + row] = t;
    }
}
