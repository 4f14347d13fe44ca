// GEMV body (one token): workgroup g computes rows NR*g .. NR*g + NR - 1 of the chunk.
// Its WG threads stride over the row's 32-element units, two units per step so more loads
// are in flight; each x unit is loaded once (registers, XUnit) and reused for the NR rows
// through the format's dot_unit, then reduce_rows (subgroup or workgroup variant) sums the
// threads. No dynamically indexed arrays: they would live in local memory.
// Grid: ceil(rows / NR) workgroups, folded into x/y when above the per-dimension limit.
const WG: u32 = 64u;
// The four rows are written out below (r0..r3): NR must stay 4.
const NR: u32 = 4u;

fn dot_rows(r0: u32, r1: u32, r2: u32, r3: u32, u: u32) -> vec4<f32> {
    let xu = load_xu(0u, u);
    return vec4<f32>(dot_unit(r0, u, xu), dot_unit(r1, u, xu), dot_unit(r2, u, xu),
        dot_unit(r3, u, xu));
}

fn gemv_run(ids: Ids) {
    let row0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * NR;
    if (row0 >= p.rows) {
        return;
    }
    let units = units_per_row();
    let last = p.rows - 1u;
    let r1 = min(row0 + 1u, last);
    let r2 = min(row0 + 2u, last);
    let r3 = min(row0 + 3u, last);
    var acc = vec4<f32>(0.0);
    var u = ids.lid;
    for (; u + WG < units; u += 2u * WG) {
        let a = dot_rows(row0, r1, r2, r3, u);
        let b = dot_rows(row0, r1, r2, r3, u + WG);
        acc += a + b;
    }
    if (u < units) {
        acc += dot_rows(row0, r1, r2, r3, u);
    }
    var sums: array<f32, NR>;
    sums[0] = acc.x;
    sums[1] = acc.y;
    sums[2] = acc.z;
    sums[3] = acc.w;
    reduce_rows(ids, sums, row0);
}
