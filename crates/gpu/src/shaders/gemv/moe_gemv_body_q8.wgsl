// MoE GEMV body with 8-bit activations (variant Dp4a): moe_gemv_body.wgsl's slots and
// expert rows (moe_slot.wgsl) over the tiles of q8_tile.wgsl (each x tile quantized per
// 32-element unit as it is loaded, the format's codes multiplied with dot4I8Packed). The x
// hooks (x_plain, x_silu, x_norm) feed the quantizer, so the down GEMV quantizes
// silu(gate) · up.
fn moe_gemv_run(ids: Ids) {
    let m = moe_slot(ids);
    if (!m.live) {
        return;
    }
    let acc = q8_rows_acc(ids, m.rows, m.xb, ids.lid % GW);
    moe_store(ids, m, reduce_sum(ids, acc * x_end(ids)));
}
