// Q5_K, raw layout (176-byte blocks = 11 aligned vec4s): vec4 0 = d,dmin and scales[12],
// vec4s 1..2 = qh[32], vec4s 3..10 = qs[128]. Sub-block j as Q4_K; the fifth bit of
// element l is bit j of qh[l]. y = d*sc*q - dmin*mn.
fn load_unit(row: u32, u: u32) -> Unit {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 11u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let sm = k_scale_min(h, j);
    let dl = dm.x * sm.x;
    let ml = dm.y * sm.y;
    let qh0 = w[base + 1u];
    let qh1 = w[base + 2u];
    let q0 = w[base + 3u + 2u * (j / 2u)];
    let q1 = w[base + 4u + 2u * (j / 2u)];
    let sh = 4u * (j % 2u);
    // The 5-bit codes assembled as integers first, as the GEMV's q5_k_g does: the float
    // form (nibble + 16 · high bit) gave wrong GEMM results on NVIDIA's Vulkan compiler
    // (parity NMSE 0.36 on an H200) while passing on lavapipe.
    var r: Unit;
    r[0] = q5_k_g(q0.x, sh, qh0.x, j) * dl - ml;
    r[1] = q5_k_g(q0.y, sh, qh0.y, j) * dl - ml;
    r[2] = q5_k_g(q0.z, sh, qh0.z, j) * dl - ml;
    r[3] = q5_k_g(q0.w, sh, qh0.w, j) * dl - ml;
    r[4] = q5_k_g(q1.x, sh, qh1.x, j) * dl - ml;
    r[5] = q5_k_g(q1.y, sh, qh1.y, j) * dl - ml;
    r[6] = q5_k_g(q1.z, sh, qh1.z, j) * dl - ml;
    r[7] = q5_k_g(q1.w, sh, qh1.w, j) * dl - ml;
    return r;
}

// GEMV: 4 elements' 5-bit values: nibbles of q >> sh, fifth bits = bit j of each byte of qh.
fn q5_k_g(q: u32, sh: u32, qh: u32, j: u32) -> vec4<f32> {
    return u8x4(((q >> sh) & 0x0F0F0F0Fu) | (((qh >> j) & 0x01010101u) << 4u));
}

// GEMV: dot of row `row`'s unit u with xu.
fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let blk = row * (p.cols / 256u) + u / 8u;
    let j = u % 8u;
    let base = blk * 11u;
    let h = w[base];
    let dm = unpack2x16float(h.x);
    let sm = k_scale_min(h, j);
    let a = w[base + 1u];
    let b = w[base + 2u];
    let q0 = w[base + 3u + 2u * (j / 2u)];
    let q1 = w[base + 4u + 2u * (j / 2u)];
    let sh = 4u * (j % 2u);
    let lo = dot_lo(xu, q5_k_g(q0.x, sh, a.x, j), q5_k_g(q0.y, sh, a.y, j),
        q5_k_g(q0.z, sh, a.z, j), q5_k_g(q0.w, sh, a.w, j));
    let hi = dot_hi(xu, q5_k_g(q1.x, sh, b.x, j), q5_k_g(q1.y, sh, b.y, j),
        q5_k_g(q1.z, sh, b.z, j), q5_k_g(q1.w, sh, b.w, j));
    return dm.x * sm.x * (lo + hi) - dm.y * sm.y * xu.sum;
}
