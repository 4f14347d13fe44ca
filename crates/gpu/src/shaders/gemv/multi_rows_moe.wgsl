// gemv_multi rows hook for MoE (moe_gemv_multi): workgroup (x, c) computes row block x of
// chunk c's expert for the chunk's slots, which moe_sort laid out consecutively (x rows
// start .. start + count of the sorted activations, out rows the same). Binding 4 holds the
// chunks as (expert, start, count) word triples; count 0 marks an unused chunk. Params as
// moe_gemv: rows = every stacked row, n_tokens = rows per expert (R), out_stride = R; the
// Dp4a form (x in act_q8 form) takes the slot count in x_offset (its x starts at 0).
@group(0) @binding(4) var<storage, read> chunks: array<u32>;

fn multi_rows(ids: Ids) -> MTile {
    let c = ids.wid.y;
    let er = p.n_tokens;
    let row0 = ids.wid.x * NR;
    let count = min(chunks[3u * c + 2u], MT);
    let mats = max(p.rows / max(er, 1u), 1u);
    let e = min(chunks[3u * c], mats - 1u);
    return MTile(row0, chunks[3u * c + 1u], count, e * er, er, p.x_offset, count > 0u && row0 < er);
}
