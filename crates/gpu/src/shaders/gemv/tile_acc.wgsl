// GEMV tile loop, shared by gemv_body, gemv_body_q8 and moe_gemv_body: the row quad's
// products with the x tile of units t0 .. t0 + TU (each body's dot_rows: four rows' unit u
// against the tile's unit ul), UPT units per thread. Whole tiles, and the whole first half of
// a partial one, run without bounds checks, so the loads of all their units issue at once (a
// loaded value used before the next load is issued costs a memory round trip each).
fn tile_acc(rows: vec4<u32>, t0: u32, units: u32, lg: u32) -> vec4<f32> {
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

// The weight rows of a row quad: as numbered, or (OUT_GATE_UP, out_swiglu) row 2i is gate
// row i and row 2i + 1 up row i (= weight row rows / 2 + i), so one quad and one reduction
// see both rows of each output.
fn weight_rows(r: vec4<u32>) -> vec4<u32> {
    if (OUT_GATE_UP) {
        return (r >> vec4<u32>(1u)) + (r & vec4<u32>(1u)) * (p.rows / 2u);
    }
    return r;
}
