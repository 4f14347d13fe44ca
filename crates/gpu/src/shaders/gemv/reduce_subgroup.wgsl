// GEMV reduction with subgroupAdd: one partial per subgroup in workgroup memory, then thread
// r < NR adds the num_subgroups partials of row r and stores it.
// At most WG / 4 subgroups (4 is the smallest subgroup size wgpu allows).
const MAX_SG: u32 = 16u;
var<workgroup> partial: array<f32, NR * MAX_SG>;

fn reduce_rows(ids: Ids, acc: array<f32, NR>, row0: u32) {
    for (var r = 0u; r < NR; r++) {
        let s = subgroupAdd(acc[r]);
        if (ids.lane == 0u) {
            partial[r * MAX_SG + ids.sg] = s;
        }
    }
    workgroupBarrier();
    if (ids.lid < NR) {
        var t = 0.0;
        for (var i = 0u; i < ids.nsg; i++) {
            t += partial[ids.lid * MAX_SG + i];
        }
        let row = row0 + ids.lid;
        if (row < p.rows) {
            store_out(0u, row, t);
        }
    }
}
