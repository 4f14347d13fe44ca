// GEMV body (one token). A workgroup of WG threads computes NR consecutive rows: thread
// group g (GW threads) owns rows 4g .. 4g + 3 and strides over their 32-element units.
// GW and NR come from the registry per format (fewer threads per row quad for formats with
// few bytes per unit, so each thread keeps 4 rows x UPT units of loads in flight).
// x goes through workgroup memory one tile (TU units) at a time, loaded coalesced and
// shared by all groups; its layout xs[j * TU + (u ^ j)] (vec4 j of unit u) makes both the
// fill and each thread's reads of its own unit bank-conflict free. Loading x per thread from
// global memory instead (each lane a different 128-byte line) capped q4_0 at ~40% of the
// read bandwidth. Units are registers only (XUnit, dot_unit): indexed arrays would spill.
// reduce_rows (reduce_subgroup or reduce_shared) then sums each group's threads. The hooks
// x_in/x_end (x_plain, x_norm) and put_out (out_store, out_add) make the same body the
// gemv, gemv_norm and gemv_add kernels.
// Grid: ceil(rows / NR) workgroups, folded into x/y when above the per-dimension limit.
const WG: u32 = 256u;
const GROUPS: u32 = WG / GW;
// Units per x tile (16 KiB of f32) and per thread per tile.
const TU: u32 = 128u;
const UPT: u32 = TU / GW;
var<workgroup> xs: array<vec4<f32>, TU * 8u>;

fn xs_unit(ul: u32) -> XUnit {
    var r: XUnit;
    r.a0 = xs[ul];
    r.a1 = xs[TU + (ul ^ 1u)];
    r.a2 = xs[2u * TU + (ul ^ 2u)];
    r.a3 = xs[3u * TU + (ul ^ 3u)];
    r.a4 = xs[4u * TU + (ul ^ 4u)];
    r.a5 = xs[5u * TU + (ul ^ 5u)];
    r.a6 = xs[6u * TU + (ul ^ 6u)];
    r.a7 = xs[7u * TU + (ul ^ 7u)];
    let one = vec4<f32>(1.0);
    r.sum = dot((r.a0 + r.a1) + (r.a2 + r.a3) + ((r.a4 + r.a5) + (r.a6 + r.a7)), one);
    return r;
}

fn dot_rows(r: vec4<u32>, u: u32, ul: u32) -> vec4<f32> {
    let xu = xs_unit(ul);
    return vec4<f32>(dot_unit(r.x, u, xu), dot_unit(r.y, u, xu), dot_unit(r.z, u, xu),
        dot_unit(r.w, u, xu));
}

fn gemv_run(ids: Ids) {
    let wg_row0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * NR;
    if (wg_row0 >= p.rows) {
        return;
    }
    let g = ids.lid / GW;
    let lg = ids.lid % GW;
    let rows = weight_rows(min(vec4<u32>(wg_row0 + 4u * g) + vec4<u32>(0u, 1u, 2u, 3u),
        vec4<u32>(p.rows - 1u)));
    let units = units_per_row();
    let c4 = p.cols / 4u;
    let xb = p.x_offset;
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < units; t0 += TU) {
        // Only the tile's units (a short row loads a fraction of the tile).
        for (var i = ids.lid; i < min(TU, units - t0) * 8u; i += WG) {
            let ul = i / 8u;
            let j = i % 8u;
            xs[j * TU + (ul ^ j)] = x_in(xb, t0 * 8u + i, c4);
        }
        workgroupBarrier();
        acc += tile_acc(rows, t0, units, lg);
        workgroupBarrier();
    }
    reduce_rows(ids, acc * x_end(ids), wg_row0);
}
