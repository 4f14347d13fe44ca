// The 6-bit (scale, min) pair of sub-block j (0..7) of a Q4_K/Q5_K block whose first vec4
// is `h`: h.x holds d and dmin, bytes 4..15 the 12 packed scale bytes.
fn k_scale_min(h: vec4<u32>, j: u32) -> vec2<f32> {
    var sc: u32;
    var mn: u32;
    if (j < 4u) {
        sc = vbyte(h, 4u + j) & 63u;
        mn = vbyte(h, 8u + j) & 63u;
    } else {
        sc = (vbyte(h, 8u + j) & 15u) | ((vbyte(h, j) >> 6u) << 4u);
        mn = (vbyte(h, 8u + j) >> 4u) | ((vbyte(h, 4u + j) >> 6u) << 4u);
    }
    return vec2<f32>(f32(sc), f32(mn));
}
