// The gemv_multi tile of a workgroup: (first row, first token). Passes (MT tokens each) vary
// fastest, so the passes over the same rows run together and share those weight rows
// through L2 instead of streaming the whole weight once per pass. The launcher folds
// ceil(rows / NR) * passes workgroups into x/y; those past the end get row0 >= p.rows.
fn multi_tile(ids: Ids) -> vec2<u32> {
    let passes = (p.n_tokens + MT - 1u) / MT;
    let l = ids.wid.x + ids.wid.y * ids.nwg.x;
    return vec2<u32>((l / passes) * NR, (l % passes) * MT);
}
