// BF16 weights, raw layout: row r element c is half r * cols + c. cols % 4 == 0.
// A bf16 is the upper 16 bits of an f32.
fn bf16x2(v: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(v << 16u), bitcast<f32>(v & 0xFFFF0000u));
}

fn load_unit(row: u32, u: u32) -> Unit {
    let c4 = p.cols / 4u;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let k = u * 8u + i;
        if (k < c4) {
            let e = row * c4 + k;
            let v = w[e >> 1u];
            let h = select(v.xy, v.zw, (e & 1u) == 1u);
            r[i] = vec4<f32>(bf16x2(h.x), bf16x2(h.y));
        }
    }
    return r;
}

// GEMV: 4 elements from a u32 pair.
fn bf16_4(h: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(bf16x2(h.x), bf16x2(h.y));
}

// GEMV: group k (4 elements) of row `row`, zero past the row's end.
fn bf16_g(row: u32, k: u32, c4: u32) -> vec4<f32> {
    if (k < c4) {
        let e = row * c4 + k;
        let v = w[e >> 1u];
        return bf16_4(select(v.xy, v.zw, (e & 1u) == 1u));
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
        return dot_lo(xu, bf16_4(v0.xy), bf16_4(v0.zw), bf16_4(v1.xy), bf16_4(v1.zw))
            + dot_hi(xu, bf16_4(v2.xy), bf16_4(v2.zw), bf16_4(v3.xy), bf16_4(v3.zw));
    }
    return dot_lo(xu, bf16_g(row, k, c4), bf16_g(row, k + 1u, c4), bf16_g(row, k + 2u, c4),
        bf16_g(row, k + 3u, c4)) + dot_hi(xu, bf16_g(row, k + 4u, c4),
        bf16_g(row, k + 5u, c4), bf16_g(row, k + 6u, c4), bf16_g(row, k + 7u, c4));
}
