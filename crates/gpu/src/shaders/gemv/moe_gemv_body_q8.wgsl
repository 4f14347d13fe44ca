// MoE GEMV body with 8-bit activations (variant Dp4a): moe_gemv_body.wgsl's slots and
// expert rows over the tiles of q8_tile.wgsl (each x tile quantized per 32-element unit as
// it is loaded, the format's codes multiplied with dot4I8Packed). The x hooks (x_plain,
// x_silu) feed the quantizer, so the down GEMV quantizes silu(gate) · up.
fn moe_gemv_run(ids: Ids) {
    let er = p.n_tokens;
    let lr0 = ids.wid.x * NR;
    if (lr0 >= er) {
        return;
    }
    let slot = ids.wid.y;
    let mats = max(p.rows / er, 1u);
    let parts = max(p.out_offset, 1u);
    let base = min(moe_ids[slot / parts] * parts + slot % parts, mats - 1u) * er;
    let g = ids.lid / GW;
    let lg = ids.lid % GW;
    let local = min(vec4<u32>(lr0 + 4u * g) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(er - 1u));
    let rows = local + vec4<u32>(base);
    let units = units_per_row();
    let c4 = p.cols / 4u;
    let xb = p.x_offset + (slot / max(p.row_offset, 1u)) * c4 * X_ROW;
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < units; t0 += TU) {
        if (ids.lid < TU) {
            fill_unit(xb, c4, t0, ids.lid);
        }
        workgroupBarrier();
        if (PAIR_Q8) {
            acc += tile_acc_pairs(rows, t0, units, lg);
        } else {
            acc += tile_acc(rows, t0, units, lg);
        }
        workgroupBarrier();
    }
    let t = reduce_sum(ids, acc * x_end(ids));
    let row = lr0 + ids.lid;
    if (ids.lid < NR && row < er) {
        out[slot * p.out_stride + row] = t;
    }
}
