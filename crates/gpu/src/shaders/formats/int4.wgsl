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

// Dp4a gemv_multi: the unit's codes (0..15) as bytes, each word's even elements, then its
// odd ones (act_q8 orders x the same way for this format); y = s code - s z.
fn unit_q8(row: u32, u: u32) -> WQ8 {
    let q = w[row * (p.cols / 32u) + u];
    let m = vec4<u32>(0x0F0F0F0Fu);
    let e = q & m;
    let o = (q >> vec4<u32>(4u)) & m;
    let sz = int_scale_zero(row, u);
    return WQ8(vec4<u32>(e.x, o.x, e.y, o.y), vec4<u32>(e.z, o.z, e.w, o.w),
        vec2<f32>(sz.x, sz.x * sz.y));
}
