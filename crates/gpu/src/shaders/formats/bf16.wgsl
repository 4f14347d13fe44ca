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
