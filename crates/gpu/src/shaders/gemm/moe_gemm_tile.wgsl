// moe_gemm: the grouped MoE GEMM (prefill) on the unchanged coop GEMM body
// (gemm_body_coop_chunk.wgsl). Workgroup (x, c) multiplies row tile x of chunk c's expert
// with the chunk's token slots, which moe_sort laid out consecutively in x and out (chunks
// of at most TN slots). The body reads its rows, tokens and the x / out places from p:
// here p is a private copy of the dispatch's params (pu) placed for the workgroup's chunk,
// and the body's grid ids move to the expert's first row tile.
//
// Params (pu) as moe_gemv_multi's: rows = every stacked row, n_tokens = rows per expert R
// (a multiple of TM, so expert tiles start on a tile), out_stride = R. Binding 4: the
// chunks as (expert, start, count) word triples. An unused chunk (count 0) gets no rows
// and no columns: no K chunks, no loads, every store masked. Launcher: src/ops/moe_gemm.rs.
@group(0) @binding(0) var<uniform> pu: Params;
@group(0) @binding(4) var<storage, read> chunks: array<u32>;
var<private> p: Params;

fn moe_gemm_run(ids: Ids) {
    let c = ids.wid.y;
    let er = max(pu.n_tokens, 1u);
    let mats = max(pu.rows / er, 1u);
    let e = min(chunks[3u * c], mats - 1u);
    let start = chunks[3u * c + 1u];
    let count = min(chunks[3u * c + 2u], TN);
    let live = count > 0u;
    p = pu;
    p.rows = select(0u, (e + 1u) * er, live);
    p.cols = select(0u, pu.cols, live);
    p.n_tokens = max(count, 1u);
    p.x_offset = pu.x_offset + start * (pu.cols / 4u);
    p.out_offset = pu.out_offset + start * er;
    p.out_stride = er;
    // store_out adds row_offset + row, and rows count from the stack's first: take the
    // expert's first row back off (u32 arithmetic wraps, the sum is in range).
    p.row_offset = pu.row_offset - e * er;
    var moved = ids;
    moved.wid = vec3<u32>(ids.wid.x + e * (er / TM), 0u, 0u);
    gemm_run(moved);
}
