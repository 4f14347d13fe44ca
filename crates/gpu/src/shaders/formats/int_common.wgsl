// Shared by the int<BITS>[z]_g<GROUP> formats: an f16 scale per (row, group) in region 2;
// with ZEROS = 1 a u8 zero point per (row, group) in region 3, else the zero point is
// 2^(BITS - 1). y = s * (c - z).
fn int_scale_zero(row: u32, u: u32) -> vec2<f32> {
    let i = mm_group_index(row, u);
    var z = f32(1u << (BITS - 1u));
    if (ZEROS == 1u) {
        z = f32(mm_third_byte(i));
    }
    return vec2<f32>(mm_half_scale(i), z);
}

// A unit's 32 codes (as floats) turned into values with scale and zero point sz.
fn int_values(c: Unit, sz: vec2<f32>) -> Unit {
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        r[i] = (c[i] - sz.y) * sz.x;
    }
    return r;
}
