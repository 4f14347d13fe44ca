// MoE GEMV body with 8-bit activations (variant Dp4a): moe_gemv_body.wgsl's slots and
// expert rows (moe_slot.wgsl) over the tiles of q8_tile.wgsl (each x tile quantized per
// 32-element unit as it is loaded, the format's codes multiplied with dot4I8Packed). The x
// hooks (x_plain, x_silu, x_norm) feed the quantizer, so the down GEMV quantizes
// silu(gate) · up. Rows of one tile load their first weights before the x fill
// (q8_rows_acc_one) unless Q8_PREFETCH is 0 or the format decodes units in pairs.
fn moe_gemv_run(ids: Ids) {
    let m = moe_slot(ids);
    if (!m.live) {
        return;
    }
    var acc: vec4<f32>;
    if (Q8_PREFETCH == 1u && !PAIR_Q8 && units_per_row() <= TU) {
        acc = q8_rows_acc_one(ids, m.rows, m.xb, ids.lid % GW);
    } else {
        acc = q8_rows_acc(ids, m.rows, m.xb, ids.lid % GW);
    }
    moe_store(ids, m, reduce_sum(ids, acc * x_end(ids)));
}
