// gemv_multi rows hook, one weight: multi_tile.wgsl's (rows, token pass) tiles.
struct MTile {
    row0: u32,  // first output row
    tok0: u32,  // first token (x row and output token)
    m: u32,     // tokens of the pass (≤ MT)
    wrow0: u32, // weight row of output row 0
    nrows: u32, // output rows (bound)
    live: bool,
}

fn multi_rows(ids: Ids) -> MTile {
    let t = multi_tile(ids);
    return MTile(t.x, t.y, min(MT, p.n_tokens - min(t.y, p.n_tokens)), 0u, p.rows, t.x < p.rows);
}
