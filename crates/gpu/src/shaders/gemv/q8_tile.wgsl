// GEMV tiles with 8-bit activations (variant Dp4a), for formats with integer codes, shared
// by gemv_body_q8 and moe_gemv_body_q8: as gemv_body.wgsl, but each x tile is quantized
// while it is loaded into workgroup memory, per 32-element unit (q8_act.wgsl):
// q = round(x / d) as packed i8 (d = max |x| / 127) plus (d, d sum q).
// The format's dot_unit_q8 then multiplies its codes with dot4I8Packed (4 products and
// their sum per instruction: one SDot on GPUs with integer dot products), where the f32
// path spends most of its instructions on converting codes and multiplying floats.
// Activations keep ~8 bits per 32-element block, as the CPU kernels and llama.cpp do.
const WG: u32 = 256u;
const GROUPS: u32 = WG / GW;
const TU: u32 = 128u;
const UPT: u32 = TU / GW;
// Unit ul's codes: xq[2 ul] (elements 0..15), xq[2 ul + 1] (16..31); its (d, d sum q).
var<workgroup> xq: array<vec4<u32>, 256>;
var<workgroup> xd: array<vec2<f32>, 128>;
// Row partial sums for reduce_rows (reduce_shared needs WG + 4 NR).
var<workgroup> xs: array<vec4<f32>, WG + 4u * NR>;

fn fill_unit(xb: u32, c4: u32, t0: u32, ul: u32) {
    let q = quant_unit(xb, (t0 + ul) * 8u, c4);
    xq[2u * ul] = q.lo;
    xq[2u * ul + 1u] = q.hi;
    xd[ul] = q.d;
}

fn dot_rows(r: vec4<u32>, u: u32, ul: u32) -> vec4<f32> {
    let lo = xq[2u * ul];
    let hi = xq[2u * ul + 1u];
    let d = xd[ul];
    return vec4<f32>(dot_unit_q8(r.x, u, lo, hi, d), dot_unit_q8(r.y, u, lo, hi, d),
        dot_unit_q8(r.z, u, lo, hi, d), dot_unit_q8(r.w, u, lo, hi, d));
}

// Units u and u + 1 (u even) of four rows, for formats that decode them together.
fn dot_rows2(r: vec4<u32>, u: u32, ul: u32) -> vec4<f32> {
    let xa = array<vec4<u32>, 2>(xq[2u * ul], xq[2u * ul + 1u]);
    let xb = array<vec4<u32>, 2>(xq[2u * ul + 2u], xq[2u * ul + 3u]);
    let da = xd[ul];
    let db = xd[ul + 1u];
    return vec4<f32>(dot_pair_q8(r.x, u, xa, da, xb, db), dot_pair_q8(r.y, u, xa, da, xb, db),
        dot_pair_q8(r.z, u, xa, da, xb, db), dot_pair_q8(r.w, u, xa, da, xb, db));
}

// tile_acc for formats that decode units in pairs (PAIR_Q8, dot_rows2): thread lg takes
// pairs 2 (lg + k GW), UPT / 2 of them (unit counts are even there).
fn tile_acc_pairs(rows: vec4<u32>, t0: u32, units: u32, lg: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    let avail = units - t0;
    if (avail >= TU) {
        for (var k = 0u; k < UPT / 2u; k++) {
            let ul = 2u * (lg + k * GW);
            acc += dot_rows2(rows, t0 + ul, ul);
        }
        return acc;
    }
    for (var k = 0u; k < UPT / 2u; k++) {
        let ul = 2u * (lg + k * GW);
        if (ul + 1u < avail) {
            acc += dot_rows2(rows, t0 + ul, ul);
        }
    }
    return acc;
}

// Four rows' products with the whole x row at vec4 xb (tile by tile, each quantized while
// it is loaded): thread lg of its row quad's GW threads.
fn q8_rows_acc(ids: Ids, rows: vec4<u32>, xb: u32, lg: u32) -> vec4<f32> {
    let units = units_per_row();
    let c4 = p.cols / 4u;
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < units; t0 += TU) {
        if (ids.lid < TU) {
            fill_unit(xb, c4, t0, ids.lid);
        }
        workgroupBarrier();
        if (PAIR_Q8) {
            acc += tile_acc_pairs(rows, t0, units, lg);
        } else {
            acc += tile_acc(rows, t0, units, lg);
        }
        workgroupBarrier();
    }
    return acc;
}

// q8_rows_acc for rows of one tile (units <= TU: every MoE expert GEMV of GLM-4.7-Flash's
// decode; moe_gemv_body_q8 only): the thread's first unit of its four rows is loaded before
// the x fill, so the weights' memory round trip overlaps the fill's instead of following
// it. Units one at a time (not PAIR_Q8's pairs).
fn q8_rows_acc_one(ids: Ids, rows: vec4<u32>, xb: u32, lg: u32) -> vec4<f32> {
    let units = units_per_row();
    let u = min(lg, units - 1u);
    let w0 = unit_q8(rows.x, u);
    let w1 = unit_q8(rows.y, u);
    let w2 = unit_q8(rows.z, u);
    let w3 = unit_q8(rows.w, u);
    if (ids.lid < TU) {
        fill_unit(xb, p.cols / 4u, 0u, ids.lid);
    }
    workgroupBarrier();
    var acc = vec4<f32>(0.0);
    if (lg < units) {
        let lo = xq[2u * lg];
        let hi = xq[2u * lg + 1u];
        let d = xd[lg];
        acc = vec4<f32>(dot_q8(w0, lo, hi, d), dot_q8(w1, lo, hi, d), dot_q8(w2, lo, hi, d),
            dot_q8(w3, lo, hi, d));
    }
    for (var k = 1u; k < UPT; k++) {
        let ul = lg + k * GW;
        if (ul < units) {
            acc += dot_rows(rows, ul, ul);
        }
    }
    workgroupBarrier();
    return acc;
}
