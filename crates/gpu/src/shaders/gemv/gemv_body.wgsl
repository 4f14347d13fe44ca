// GEMV body (one token): workgroup g computes rows NR*g .. NR*g + NR - 1 of the chunk.
// Its WG threads stride over the row's 32-element units; each x unit is loaded once and
// reused for the NR rows, then reduce_rows (subgroup or workgroup variant) sums the threads.
// Grid: ceil(rows / NR) workgroups, folded into x/y when above the per-dimension limit.
const WG: u32 = 64u;
const NR: u32 = 4u;

fn gemv_run(ids: Ids) {
    let row0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * NR;
    if (row0 >= p.rows) {
        return;
    }
    let units = units_per_row();
    var acc: array<f32, NR>;
    for (var u = ids.lid; u < units; u += WG) {
        let xu = load_x_unit(0u, u);
        for (var r = 0u; r < NR; r++) {
            let wu = load_unit(min(row0 + r, p.rows - 1u), u);
            var s = vec4<f32>(0.0);
            for (var i = 0u; i < 8u; i++) {
                s = fma(wu[i], xu[i], s);
            }
            acc[r] += (s.x + s.y) + (s.z + s.w);
        }
    }
    reduce_rows(ids, acc, row0);
}
