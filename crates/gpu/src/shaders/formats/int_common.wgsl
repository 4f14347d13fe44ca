// Shared by the int<BITS>[z]_g<GROUP> formats: f16 scales, one per group, first in the
// super-block's meta bytes; with ZEROS = 1 a u8 zero point per group follows them, else
// the zero point is 2^(BITS - 1). y = s * (c - z).
fn int_scale_zero(row: u32, u: u32) -> vec2<f32> {
    let sb = mm_sb(row, u);
    let g = mm_group(u % 8u);
    var z = f32(1u << (BITS - 1u));
    if (ZEROS == 1u) {
        z = f32(mm_meta_byte(sb, 2u * (256u / GROUP) + g));
    }
    return vec2<f32>(mm_half_scale(sb, g), z);
}

// A unit's 32 codes (as floats) turned into values with scale and zero point sz.
fn int_values(c: Unit, sz: vec2<f32>) -> Unit {
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        r[i] = (c[i] - sz.y) * sz.x;
    }
    return r;
}
