// GEMV reduction without subgroups: a tree sum over each thread group's GW threads in
// workgroup memory (reusing the x tile, free after the body's last barrier).
fn reduce_rows(ids: Ids, acc: vec4<f32>, row0: u32) {
    xs[ids.lid] = acc;
    workgroupBarrier();
    let lg = ids.lid % GW;
    for (var s = GW / 2u; s > 0u; s >>= 1u) {
        if (lg < s) {
            xs[ids.lid] += xs[ids.lid + s];
        }
        workgroupBarrier();
    }
    if (ids.lid < NR) {
        let row = row0 + ids.lid;
        if (row < p.rows) {
            store_out(0u, row, xs[(ids.lid / 4u) * GW][ids.lid % 4u]);
        }
    }
}
