// gemv_multi rows hook, one weight: multi_tile.wgsl's (rows, token pass) tiles.
fn multi_rows(ids: Ids) -> MTile {
    let t = multi_tile(ids);
    let m = min(MT, p.n_tokens - min(t.y, p.n_tokens));
    return MTile(t.x, t.y, m, 0u, p.rows, p.n_tokens, t.x < p.rows);
}
