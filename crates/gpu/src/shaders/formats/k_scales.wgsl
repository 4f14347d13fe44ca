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

// k_scale_min of sub-blocks j and j + 1 (j even) as (sc_j, mn_j, sc_j+1, mn_j+1), without
// a branch on j (lanes of one subgroup hold different j): the low sub-blocks' 6-bit pairs
// sit in bytes 4 + j and 8 + j, the high ones' low 4 bits in byte 8 + j and top 2 bits in
// the top of bytes j and 4 + j, all at byte j % 4 of words 1..3.
fn k_scale_min2(h: vec4<u32>, j: u32) -> vec4<f32> {
    let sh = vec2<u32>(8u * (j & 3u), 8u * (j & 3u) + 8u);
    let y = vec2<u32>(h.y) >> sh;
    let z = vec2<u32>(h.z) >> sh;
    let ww = vec2<u32>(h.w) >> sh;
    let c63 = vec2<u32>(63u);
    let c15 = vec2<u32>(15u);
    let c48 = vec2<u32>(48u);
    let two = vec2<u32>(2u);
    let hi = vec2<bool>(j >= 4u);
    let sc = select(y & c63, (ww & c15) | ((y >> two) & c48), hi);
    let mn = select(z & c63, ((ww >> vec2<u32>(4u)) & c15) | ((z >> two) & c48), hi);
    return vec4<f32>(f32(sc.x), f32(mn.x), f32(sc.y), f32(mn.y));
}
