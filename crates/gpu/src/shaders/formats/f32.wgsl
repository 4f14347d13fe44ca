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
