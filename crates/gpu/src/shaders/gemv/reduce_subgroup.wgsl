// GEMV reduction with subgroupAdd: each subgroup's sums of its 4 rows go to workgroup
// memory (reusing the x tile, free after the body's last barrier), then thread i < NR adds
// the partials of the subgroups of row i's thread group. Needs subgroups of at most GW
// threads that never straddle two groups (sizes 4..64 do; 128 would not).
fn reduce_rows(ids: Ids, acc: vec4<f32>, row0: u32) {
    let s = subgroupAdd(acc);
    if (ids.lane == 0u) {
        xs[ids.sg] = s;
    }
    workgroupBarrier();
    if (ids.lid < NR) {
        let per = ids.nsg / GROUPS;
        let first = (ids.lid / 4u) * per;
        let r = ids.lid % 4u;
        var t = 0.0;
        // The other row of the adjacent pair (same quad), for hooks that need both.
        var pair = 0.0;
        for (var i = 0u; i < per; i++) {
            t += xs[first + i][r];
            if (OUT_PAIR) {
                pair += xs[first + i][r ^ 1u];
            }
        }
        let row = row0 + ids.lid;
        if (row < p.rows) {
            put_out(row, t, pair);
        }
    }
}
