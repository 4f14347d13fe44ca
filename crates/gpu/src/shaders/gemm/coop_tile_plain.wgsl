// coop_tile hook of the GEMM: workgroup (x, y) takes row tile x and token tile y of the
// whole weight and all n_tokens tokens; every workgroup has work.
const MOE_TILES: bool = false;

fn coop_live(ids: Ids) -> u32 {
    return 1u;
}

fn coop_tile(ids: Ids) -> CoopTile {
    return CoopTile(p.rows, 0u, ids.wid.y * TN, p.n_tokens, 0u);
}
