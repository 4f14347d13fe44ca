// The coop GEMM's weight staging (gemm_body_coop_chunk.wgsl) for trellis tiles
// (formats/trellis.wgsl): a chunk slot is one 32-element unit, the rows of two tiles side by
// side. Each row's 16 states are windows of the 96 stream bits after its first state, taken
// from registers (the unrolled state loop folds the window arithmetic), and 3INST / MCG
// values are summed from their two f16 halves in f16, the same value as the f32 sum rounded
// to f16 (the halves' exponents are close, so their f32 sum is exact). MUL1 keeps
// tr_value's f32 math. Only Q: the launcher runs the sides.

// Bits b .. b + 15 of the 96-bit window h:m:l, MSB first (b <= 80).
fn tr_bits16(h: u32, m: u32, l: u32, b: u32) -> u32 {
    if (b < 32u) {
        return tr_funnel(h, m, b) >> 16u;
    }
    if (b < 64u) {
        return tr_funnel(m, l, b - 32u) >> 16u;
    }
    return (l << (b - 64u)) >> 16u;
}

// The codebook value of a 16-bit state, as f16.
fn tr_value_h(state: u32) -> f16 {
    if (CODEBOOK == 2u) {
        return f16(tr_value(state));
    }
    var x = state * 0xCBAC1FEDu;
    if (CODEBOOK == 0u) {
        x = state * 89226354u + 64248484u;
    }
    let h = vec2<f16>(unpack2x16float((x & 0x8FFF8FFFu) ^ 0x3B603B60u));
    return h.x + h.y;
}

// Row `row`'s 16 values of tile column tk into cw row rl from chunk element k0 (zeros
// when !ok; the reads stay in range).
fn tr_stage_row(row: u32, tk: u32, rl: u32, k0: u32, ok: bool) {
    let tb = ((row / 16u) * (p.cols / 16u) + tk) * TW;
    let s = (16u * (row % 16u) * BITS + BITS + STREAM - 16u) % STREAM;
    let i0 = s / 32u;
    let off = s % 32u;
    let w0 = word(tb + i0);
    let w1 = word(tb + (i0 + 1u) % TW);
    let w2 = word(tb + (i0 + 2u) % TW);
    let w3 = word(tb + (i0 + 3u) % TW);
    let h = tr_funnel(w0, w1, off);
    let m = tr_funnel(w1, w2, off);
    let l = tr_funnel(w2, w3, off);
    for (var j = 0u; j < 16u; j++) {
        let v = tr_value_h(tr_bits16(h, m, l, j * BITS));
        cw[cw_at(rl, k0 + j)] = select(0.0h, v, ok);
    }
}

// Chunk slot s (coop_slot: row rl, unit u0 + ku) decoded into cw; zero for rows and units
// past the end (their reads are clamped in range).
fn coop_stage_w(row0: u32, u0: u32, units: u32, s: u32) {
    let slot = coop_slot(s);
    let rl = slot.x;
    let ku = slot.y;
    let row = min(row0 + rl, p.rows - 1u);
    let u = min(u0 + ku, units - 1u);
    let ok = row0 + rl < p.rows && u0 + ku < units;
    let kt = p.cols / 16u;
    tr_stage_row(row, 2u * u, rl, ku * UNIT, ok);
    // A row of an odd number of tiles: its last unit's second half is zeros.
    tr_stage_row(row, min(2u * u + 1u, kt - 1u), rl, ku * UNIT + 16u, ok && 2u * u + 1u < kt);
}
