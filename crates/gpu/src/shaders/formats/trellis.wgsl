// trellis<BITS>[_<codebook>]: QTIP-style bitshift trellis (marlin_core::formats::trellis).
// The weight is W = diag(svh) H_n Q H_k diag(suh); these kernels compute Q only (the
// launcher runs hadamard_scale on both sides). Q is stored in 16 x 16 tiles of 256 trellis
// positions, tile (row / 16, k / 16) at word ((row / 16) * (cols / 16) + k / 16) * TW,
// position 16 * (row % 16) + (k % 16). A tile is a tail-biting stream of 256 * BITS bits,
// MSB-first in each u32; the state of position t is the 16 bits ending at bit (t + 1) * BITS
// (modulo the stream length), so one row of a tile reads 15 * BITS + 16 consecutive bits:
// three or four words, shifted out BITS bits at a time. The registry defines BITS and
// CODEBOOK (0 = 3INST, 1 = MCG, 2 = MUL1). A 32-element unit is two tiles side by side.
const TW: u32 = 8u * BITS;
const STREAM: u32 = 256u * BITS;

// The codebook value of a 16-bit state, bit-exact with decode_value on the CPU: 3INST/MCG
// add the two f16 halves in f32 (exact), MUL1 is (byte sum - 510) * 1 / 147.800537109375.
fn tr_value(state: u32) -> f32 {
    if (CODEBOOK == 2u) {
        let x = state * 0x83DCD12Du;
        let s = (x & 0xFFu) + ((x >> 8u) & 0xFFu) + ((x >> 16u) & 0xFFu) + (x >> 24u);
        return (f32(s) - 510.0) * bitcast<f32>(0x3BDDB447u);
    }
    var x = state * 0xCBAC1FEDu;
    if (CODEBOOK == 0u) {
        x = state * 89226354u + 64248484u;
    }
    let h = unpack2x16float((x & 0x8FFF8FFFu) ^ 0x3B603B60u);
    return h.x + h.y;
}

// The 32 stream bits starting `off` bits into word a (b follows a).
fn tr_funnel(a: u32, b: u32, off: u32) -> u32 {
    return select((a << off) | (b >> (32u - off)), a, off == 0u);
}

// The value of the state in the top 16 bits of hi, then the 64-bit window (hi, lo) moves
// on by BITS bits.
fn tr_step(hi: ptr<function, u32>, lo: ptr<function, u32>) -> f32 {
    let v = tr_value(*hi >> 16u);
    *hi = (*hi << BITS) | (*lo >> (32u - BITS));
    *lo = *lo << BITS;
    return v;
}

fn tr_vec4(hi: ptr<function, u32>, lo: ptr<function, u32>) -> vec4<f32> {
    let a = tr_step(hi, lo);
    let b = tr_step(hi, lo);
    let c = tr_step(hi, lo);
    let d = tr_step(hi, lo);
    return vec4<f32>(a, b, c, d);
}

struct Tr16 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

// Row `row`'s 16 values in tile column tk.
fn tr_row16(row: u32, tk: u32) -> Tr16 {
    let tb = ((row / 16u) * (p.cols / 16u) + tk) * TW;
    let s = (16u * (row % 16u) * BITS + BITS + STREAM - 16u) % STREAM;
    let i0 = s / 32u;
    let off = s % 32u;
    let w1 = word(tb + (i0 + 1u) % TW);
    let w2 = word(tb + (i0 + 2u) % TW);
    var hi = tr_funnel(word(tb + i0), w1, off);
    var lo = tr_funnel(w1, w2, off);
    var r: Tr16;
    r.a = tr_vec4(&hi, &lo);
    r.b = tr_vec4(&hi, &lo);
    if (BITS == 4u) {
        // 8 states used 32 bits: the low word is empty, refill it.
        lo = tr_funnel(w2, word(tb + (i0 + 3u) % TW), off);
    }
    r.c = tr_vec4(&hi, &lo);
    r.d = tr_vec4(&hi, &lo);
    return r;
}

fn load_unit(row: u32, u: u32) -> Unit {
    var r: Unit;
    let a = tr_row16(row, 2u * u);
    r[0] = a.a;
    r[1] = a.b;
    r[2] = a.c;
    r[3] = a.d;
    if (2u * u + 1u < p.cols / 16u) {
        let b = tr_row16(row, 2u * u + 1u);
        r[4] = b.a;
        r[5] = b.b;
        r[6] = b.c;
        r[7] = b.d;
    }
    return r;
}

fn dot_unit(row: u32, u: u32, xu: XUnit) -> f32 {
    let a = tr_row16(row, 2u * u);
    var f = dot_lo(xu, a.a, a.b, a.c, a.d);
    if (2u * u + 1u < p.cols / 16u) {
        let b = tr_row16(row, 2u * u + 1u);
        f += dot_hi(xu, b.a, b.b, b.c, b.d);
    }
    return f;
}
