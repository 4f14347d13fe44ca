// F32 weights, raw layout: row r element c at word r * cols + c. cols % 4 == 0.
fn load_unit(row: u32, u: u32) -> Unit {
    let c4 = p.cols / 4u;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let k = u * 8u + i;
        if (k < c4) {
            let e = (row * c4 + k) * 4u;
            r[i] = bitcast<vec4<f32>>(vec4<u32>(w[e], w[e + 1u], w[e + 2u], w[e + 3u]));
        }
    }
    return r;
}
