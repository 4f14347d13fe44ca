// Q4_K, raw layout (144-byte blocks = 9 aligned vec4s): vec4 0 = d,dmin (f16 pair) and
// scales[12]; vec4s 1..8 = qs[128]. Unit u = sub-block j = u % 8 of block u / 8; it uses
// qs bytes 32 * (j / 2) .. + 32, low nibbles for even j, high for odd. y = d*sc*q - dmin*mn.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 9u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let sm = k_scale_min(h, j);
    let dl = dm.x * sm.x;
    let ml = dm.y * sm.y;
    let q0 = w[base + 1u + 2u * (j / 2u)];
    let q1 = w[base + 2u + 2u * (j / 2u)];
    let sh = 4u * (j % 2u);
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        r[i] = u8x4((q0[i] >> sh) & 0x0F0F0F0Fu) * dl - ml;
        r[i + 4u] = u8x4((q1[i] >> sh) & 0x0F0F0F0Fu) * dl - ml;
    }
    return r;
}

// GEMV: dot of row `row`'s unit u with xu (f = 1 + q / 16: dot(q, x) = 16 (dot(f, x) - sum)).
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 9u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let sm = k_scale_min(h, j);
    let sh = vec4<u32>(4u * (j % 2u));
    let q0 = w[base + 1u + 2u * (j / 2u)] >> sh;
    let q1 = w[base + 2u + 2u * (j / 2u)] >> sh;
    let lo = dot_lo(xu, nib_lo(q0.x), nib_lo(q0.y), nib_lo(q0.z), nib_lo(q0.w));
    let hi = dot_hi(xu, nib_lo(q1.x), nib_lo(q1.y), nib_lo(q1.z), nib_lo(q1.w));
    return dm.x * sm.x * 16.0 * ((lo + hi) - xu.sum) - dm.y * sm.y * xu.sum;
}

// Dp4a kernels: sub-block j's nibbles as i8 codes; y = d sc q - dmin mn, so
// ab = (d sc, dmin mn): dot(y, x) = d sc dot(q, x) - dmin mn sum(x).
fn unit_q8(row: u32, u: u32) -> WQ8 {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 9u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let sm = k_scale_min(h, j);
    let sh = vec4<u32>(4u * (j % 2u));
    let m = vec4<u32>(0x0F0F0F0Fu);
    let q0 = (w[base + 1u + 2u * (j / 2u)] >> sh) & m;
    let q1 = (w[base + 2u + 2u * (j / 2u)] >> sh) & m;
    return WQ8(q0, q1, vec2<f32>(dm.x * sm.x, dm.y * sm.y));
}

// Dp4a GEMV: sub-block j's codes times the unit's 8-bit activations (xd = (d, d sum q)).
fn dot_unit_q8(row: u32, u: u32, xl: vec4<u32>, xh: vec4<u32>, xd: vec2<f32>) -> f32 {
    return dot_q8(unit_q8(row, u), xl, xh, xd);
}

// The Dp4a GEMV takes units in pairs (u even, u + 1): sub-blocks 2i and 2i + 1 are the low
// and high nibbles of the same 32 bytes, so a pair loads its header and codes once (one
// unit at a time loaded both twice: 3 vec4 per 32 weights).
const PAIR_Q8: bool = true;

fn dot_pair_q8(row: u32, u: u32, xa: array<vec4<u32>, 2>, da: vec2<f32>,
    xb: array<vec4<u32>, 2>, db: vec2<f32>) -> f32 {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 9u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let s2 = k_scale_min2(h, j);
    let sa = s2.xy;
    let sb = s2.zw;
    let m = vec4<u32>(0x0F0F0F0Fu);
    let q0 = w[base + 1u + 2u * (j / 2u)];
    let q1 = w[base + 2u + 2u * (j / 2u)];
    let s4 = vec4<u32>(4u);
    let wa = WQ8(q0 & m, q1 & m, vec2<f32>(dm.x * sa.x, dm.y * sa.y));
    let wb = WQ8((q0 >> s4) & m, (q1 >> s4) & m, vec2<f32>(dm.x * sb.x, dm.y * sb.y));
    return dot_q8(wa, xa[0], xa[1], da) + dot_q8(wb, xb[0], xb[1], db);
}
