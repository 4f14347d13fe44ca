// The coop GEMM's weight staging (gemm_body_coop_chunk.wgsl) through the format's
// load_unit: one 32-element unit per chunk slot, converted to f16.
// Chunk slot s (coop_slot: row rl, unit u0 + ku) dequantized into cw; zero for rows and
// units past the end (their reads are clamped in range).
fn coop_stage_w(row0: u32, u0: u32, units: u32, s: u32) {
    let slot = coop_slot(s);
    let rl = slot.x;
    let ku = slot.y;
    let row = row0 + rl;
    let u = u0 + ku;
    let wu = load_unit(min(row, p.rows - 1u), min(u, units - 1u));
    let ok = row < p.rows && u < units;
    for (var i = 0u; i < 8u; i++) {
        let v = vec4<f16>(select(vec4<f32>(0.0), wu[i], ok));
        let k = ku * UNIT + i * 4u;
        cw[cw_at(rl, k)] = v.x;
        cw[cw_at(rl, k + 1u)] = v.y;
        cw[cw_at(rl, k + 2u)] = v.z;
        cw[cw_at(rl, k + 3u)] = v.w;
    }
}
