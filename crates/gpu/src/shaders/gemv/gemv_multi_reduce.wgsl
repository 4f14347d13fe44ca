// gemv_multi reduction in workgroup memory (the f32 body's; outputs rows tile.row0 .. of
// tokens tile.tok0 .., below tile.nrows and tile.m). Thread (pair pr, unit
// lane ul) holds, per token pair k, vec4(token 2k: rows a, b; token 2k + 1: rows a, b)
// summed over its units; the TU lanes of a pair are added here, one token pair per round
// (xs needs only TU * PAIRS vec4s, so the Dp4a body's small tile stays small). Slot
// ul * PAIRS + (pr ^ ul) keeps both the stores and the 16-lane column reads conflict-free.
fn reduce_pair(ids: Ids, acc: vec4<f32>, k: u32, tile: MTile) {
    let pr = ids.lid / TU;
    let ul = ids.lid % TU;
    xs[ul * PAIRS + (pr ^ ul)] = acc;
    workgroupBarrier();
    if (ids.lid < 2u * NR) {
        let rl = ids.lid % NR;
        let tt = ids.lid / NR;
        let p2 = rl / 2u;
        let c = tt * 2u + rl % 2u;
        var s = 0.0;
        for (var q = 0u; q < TU; q++) {
            s += xs[q * PAIRS + (p2 ^ q)][c];
        }
        let t = 2u * k + tt;
        let row = tile.row0 + rl;
        if (t < tile.m && row < tile.nrows) {
            store_out(tile.tok0 + t, row, s);
        }
    }
    workgroupBarrier();
}

// Store the workgroup's NR rows x m tokens from every thread's four token-pair sums.
fn reduce_multi(ids: Ids, acc: array<vec4<f32>, 4>, tile: MTile) {
    reduce_pair(ids, acc[0], 0u, tile);
    if (tile.m > 2u) {
        reduce_pair(ids, acc[1], 1u, tile);
    }
    if (tile.m > 4u) {
        reduce_pair(ids, acc[2], 2u, tile);
    }
    if (tile.m > 6u) {
        reduce_pair(ids, acc[3], 3u, tile);
    }
}
