// GEMV reduction without subgroups: a tree sum over the WG threads in workgroup memory.
var<workgroup> red: array<f32, NR * WG>;

fn reduce_rows(ids: Ids, acc: array<f32, NR>, row0: u32) {
    for (var r = 0u; r < NR; r++) {
        red[r * WG + ids.lid] = acc[r];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (ids.lid < s) {
            for (var r = 0u; r < NR; r++) {
                red[r * WG + ids.lid] += red[r * WG + ids.lid + s];
            }
        }
        workgroupBarrier();
    }
    if (ids.lid < NR) {
        let row = row0 + ids.lid;
        if (row < p.rows) {
            store_out(0u, row, red[ids.lid * WG]);
        }
    }
}
