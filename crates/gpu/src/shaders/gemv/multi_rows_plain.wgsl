// gemv_multi rows hook, one weight: multi_tile.wgsl's (rows, token pass) tiles.
fn multi_rows(ids: Ids) -> MTile {
    let t = multi_tile(ids);
    return MTile(t.x, t.y, min(MT, p.n_tokens - min(t.y, p.n_tokens)), 0u, p.rows, t.x < p.rows);
}
