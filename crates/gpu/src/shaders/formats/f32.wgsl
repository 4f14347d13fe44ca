// F32 weights, raw layout: row r element c at word r * cols + c. cols % 4 == 0, so every
// vec4 of a row is one aligned vec4<u32>.
fn load_unit(row: u32, u: u32) -> Unit {
    let c4 = p.cols / 4u;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let k = u * 8u + i;
        if (k < c4) {
            r[i] = bitcast<vec4<f32>>(w[row * c4 + k]);
        }
    }
    return r;
}

// GEMV: group k (4 elements) of row `row`, zero past the row's end.
fn f32_g(row: u32, k: u32, c4: u32) -> vec4<f32> {
    if (k < c4) {
        return bitcast<vec4<f32>>(w[row * c4 + k]);
    }
    return vec4<f32>(0.0);
}

// GEMV: dot of row `row`'s unit u with xu.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let c4 = p.cols / 4u;
    let k = u * 8u;
    return dot_lo(xu, f32_g(row, k, c4), f32_g(row, k + 1u, c4), f32_g(row, k + 2u, c4),
        f32_g(row, k + 3u, c4)) + dot_hi(xu, f32_g(row, k + 4u, c4), f32_g(row, k + 5u, c4),
        f32_g(row, k + 6u, c4), f32_g(row, k + 7u, c4));
}
