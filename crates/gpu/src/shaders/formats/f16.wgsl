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
