// F16 weights, raw layout: row r element c is half r * cols + c. cols % 4 == 0.
fn load_unit(row: u32, u: u32) -> Unit {
    let c4 = p.cols / 4u;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let k = u * 8u + i;
        if (k < c4) {
            let e = (row * c4 + k) * 2u;
            r[i] = vec4<f32>(unpack2x16float(w[e]), unpack2x16float(w[e + 1u]));
        }
    }
    return r;
}
