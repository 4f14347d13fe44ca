// F16 weights, raw layout: row r element c is half r * cols + c. cols % 4 == 0, so each
// group of 4 halves is one aligned u32 pair (half of a vec4<u32>).
fn load_unit(row: u32, u: u32) -> Unit {
    let c4 = p.cols / 4u;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let k = u * 8u + i;
        if (k < c4) {
            let e = row * c4 + k;
            let v = w[e >> 1u];
            let h = select(v.xy, v.zw, (e & 1u) == 1u);
            r[i] = vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
        }
    }
    return r;
}

// GEMV: 4 elements from a u32 pair.
fn f16_4(h: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}

// GEMV: group k (4 elements) of row `row`, zero past the row's end.
fn f16_g(row: u32, k: u32, c4: u32) -> vec4<f32> {
    if (k < c4) {
        let e = row * c4 + k;
        let v = w[e >> 1u];
        return f16_4(select(v.xy, v.zw, (e & 1u) == 1u));
    }
    return vec4<f32>(0.0);
}

// GEMV: dot of row `row`'s unit u with xu. Whole units of rows with an even number of
// groups are 4 aligned vec4 loads; others go group by group.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let c4 = p.cols / 4u;
    let k = u * 8u;
    if ((c4 & 1u) == 0u && k + 8u <= c4) {
        let i = (row * c4 + k) >> 1u;
        let v0 = w[i];
        let v1 = w[i + 1u];
        let v2 = w[i + 2u];
        let v3 = w[i + 3u];
        return dot_lo(xu, f16_4(v0.xy), f16_4(v0.zw), f16_4(v1.xy), f16_4(v1.zw))
            + dot_hi(xu, f16_4(v2.xy), f16_4(v2.zw), f16_4(v3.xy), f16_4(v3.zw));
    }
    return dot_lo(xu, f16_g(row, k, c4), f16_g(row, k + 1u, c4), f16_g(row, k + 2u, c4),
        f16_g(row, k + 3u, c4)) + dot_hi(xu, f16_g(row, k + 4u, c4),
        f16_g(row, k + 5u, c4), f16_g(row, k + 6u, c4), f16_g(row, k + 7u, c4));
}
