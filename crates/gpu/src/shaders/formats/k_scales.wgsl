// The 6-bit (scale, min) pair of sub-block j (0..7) of a Q4_K/Q5_K block whose first word is
// `base`; the 12 packed scale bytes start at byte 4 of the block.
fn k_scale_min(base: u32, j: u32) -> vec2<f32> {
    let s = base + 1u;
    var sc: u32;
    var mn: u32;
    if (j < 4u) {
        sc = byte_at(s, j) & 63u;
        mn = byte_at(s, j + 4u) & 63u;
    } else {
        sc = (byte_at(s, j + 4u) & 15u) | ((byte_at(s, j - 4u) >> 6u) << 4u);
        mn = (byte_at(s, j + 4u) >> 4u) | ((byte_at(s, j) >> 6u) << 4u);
    }
    return vec2<f32>(f32(sc), f32(mn));
}
