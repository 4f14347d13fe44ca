// A gemv_multi workgroup's rows and tokens, from the multi_rows hook (multi_rows_plain.wgsl,
// multi_rows_moe.wgsl).
struct MTile {
    row0: u32,  // first output row
    tok0: u32,  // first token (x row and output token)
    m: u32,     // tokens of the pass (≤ MT)
    wrow0: u32, // weight row of output row 0
    nrows: u32, // output rows (bound)
    xrows: u32, // rows of x (the Dp4a body's act_q8 scales follow their codes)
    live: bool,
}

// The gemv_multi tile of a workgroup: (first row, first token). Passes (MT tokens each) vary
// fastest, so the passes over the same rows run together and share those weight rows
// through L2 instead of streaming the whole weight once per pass. The launcher folds
// ceil(rows / NR) * passes workgroups into x/y; those past the end get row0 >= p.rows.
fn multi_tile(ids: Ids) -> vec2<u32> {
    let passes = (p.n_tokens + MT - 1u) / MT;
    let l = ids.wid.x + ids.wid.y * ids.nwg.x;
    return vec2<u32>((l / passes) * NR, (l % passes) * MT);
}
