// coop_tile hook of the grouped MoE GEMM (moe_gemm): workgroup (x, c) computes row tile x
// of chunk c's expert for the chunk's token slots, which moe_sort laid out consecutively
// (x rows start .. start + count of the sorted activations, out rows the same; chunks of at
// most TN slots). Binding 4 holds the chunks as (expert, start, count) word triples; count
// 0 marks an unused chunk, whose workgroups return (coop_live). Params as moe_gemv_multi:
// rows = every stacked row, n_tokens = rows per expert (R), out_stride = R.
@group(0) @binding(4) var<storage, read> chunks: array<u32>;

const MOE_TILES: bool = true;

fn coop_live(ids: Ids) -> u32 {
    let c = ids.wid.y;
    return u32(chunks[3u * c + 2u] > 0u && ids.wid.x * TM < p.n_tokens);
}

fn coop_tile(ids: Ids) -> CoopTile {
    let c = ids.wid.y;
    let er = p.n_tokens;
    let count = min(chunks[3u * c + 2u], TN);
    let mats = max(p.rows / max(er, 1u), 1u);
    let e = min(chunks[3u * c], mats - 1u);
    return CoopTile(er, e * er, 0u, max(count, 1u), chunks[3u * c + 1u]);
}
