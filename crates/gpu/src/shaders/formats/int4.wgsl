// int4[z]_g<GROUP>: 4-bit codes, element 8i + k at nibble k of code word i (unit codes:
// vec4 sb * 8 + j of region 1). Codes decode as f = 1 + c / 16: dot(c, x) = 16 (dot(f, x)
// - sum(x)).
const BITS: u32 = 4u;

fn load_unit(row: u32, u: u32) -> Unit {
    let q = w[row * (p.cols / 32u) + u];
    var c: Unit;
    for (var i = 0u; i < 4u; i++) {
        let n = nib8(q[i]);
        c[2u * i] = (n.lo - 1.0) * 16.0;
        c[2u * i + 1u] = (n.hi - 1.0) * 16.0;
    }
    return int_values(c, int_scale_zero(row, u));
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let q = w[row * (p.cols / 32u) + u];
    let a = nib8(q.x);
    let b = nib8(q.y);
    let c = nib8(q.z);
    let d = nib8(q.w);
    let f = dot_lo(xu, a.lo, a.hi, b.lo, b.hi) + dot_hi(xu, c.lo, c.hi, d.lo, d.hi);
    let sz = int_scale_zero(row, u);
    return sz.x * (16.0 * (f - xu.sum) - sz.y * xu.sum);
}
