// E2M1 codes as 8-bit integers for the Dp4a gemv_multi: 2 E2M1 is an integer (0, 1, 2, 3,
// 4, 6, 8, 12 for the magnitudes 0..7), so the fp4 formats' products can run on
// dot4I8Packed with the scale halved. All eight nibbles of a word convert at once.

// Nibbles of w (sign | 3-bit magnitude m) as nibbles 2 E2M1(m): m for m <= 4, then 6, 8,
// 12 = m + (m - 4) + 2 [m = 7]; no carry leaves a nibble (the largest value is 12).
fn e2m1x2_mag(w: u32) -> u32 {
    let m = w & 0x77777777u;
    let ge5 = ((m + 0x33333333u) >> 3u) & 0x11111111u;
    let eq7 = ((m + 0x11111111u) >> 3u) & 0x11111111u;
    return m + ((m - (ge5 << 2u)) & (ge5 * 15u)) + (eq7 << 1u);
}

// Four bytes v (0..12) negated where bit 0 of the byte in s is set, as packed i8. A
// negative zero stays 0 (its two's complement would carry into the next byte).
fn sign_bytes(v: u32, s: u32) -> u32 {
    let neg = s & (((v + 0x7F7F7F7Fu) >> 7u) & 0x01010101u);
    return (v ^ (neg * 0xFFu)) + neg;
}

// The eight codes of w as i8 values 2 E2M1: .x the low nibble of each byte (nibbles 0, 2,
// 4, 6), .y the high nibbles (1, 3, 5, 7), byte order kept.
fn e2m1_i8(w: u32) -> vec2<u32> {
    let v = e2m1x2_mag(w);
    let m = 0x0F0F0F0Fu;
    return vec2<u32>(sign_bytes(v & m, (w >> 3u) & 0x01010101u),
        sign_bytes((v >> 4u) & m, (w >> 7u) & 0x01010101u));
}
