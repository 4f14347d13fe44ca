// GEMV tile loop, shared by gemv_body, gemv_body_q8 and moe_gemv_body: the row quad's
// products with the x tile of units t0 .. t0 + TU (each body's dot_rows: four rows' unit u
// against the tile's unit ul), UPT units per thread. Whole tiles, and the whole first half of
// a partial one, run without bounds checks, so the loads of all their units issue at once (a
// loaded value used before the next load is issued costs a memory round trip each).
fn tile_acc(rows: vec4<u32>, t0: u32, units: u32, lg: u32) -> vec4<f32> {
    if (pair_units()) {
        return tile_acc_pairs(rows, t0, units, lg);
    }
    var acc = vec4<f32>(0.0);
    let avail = units - t0;
    var k0 = 0u;
    if (avail >= TU) {
        for (var k = 0u; k < UPT; k++) {
            let ul = lg + k * GW;
            acc += dot_rows(rows, t0 + ul, ul);
        }
        k0 = UPT;
    } else if (avail >= TU / 2u) {
        for (var k = 0u; k < UPT / 2u; k++) {
            let ul = lg + k * GW;
            acc += dot_rows(rows, t0 + ul, ul);
        }
        k0 = UPT / 2u;
    }
    for (var k = k0; k < UPT; k++) {
        let ul = lg + k * GW;
        if (t0 + ul < units) {
            acc += dot_rows(rows, t0 + ul, ul);
        }
    }
    return acc;
}

// tile_acc for formats whose body decodes units in pairs (pair_units, dot_rows2): thread lg
// takes pairs 2 (lg + k GW), UPT / 2 of them (unit counts are even there).
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
