// GEMV output hook of gemv_norm_swiglu: one token's gate|up projection (gate rows
// [0, f), up rows [f, 2 f), f = rows / 2) with SwiGLU folded into the output, so no
// silu_mul dispatch runs after it. OUT_GATE_UP makes the body read weight rows in pairs
// (gate i, up i) as its rows 2i and 2i + 1 (weight_rows, tile_acc.wgsl); the reduction
// hands row 2i the up sum too (OUT_PAIR), and row 2i stores silu(gate) · up at out[i]
// (silu(g) = g / (1 + e^-g), as silu_mul computes it). Launcher: src/ops/gemv_fused.rs.
const OUT_PAIR: bool = true;
const OUT_GATE_UP: bool = true;

fn put_out(row: u32, v: f32, pair: f32) {
    if ((row & 1u) == 1u) {
        return;
    }
    out[p.out_offset + row / 2u] = v / (1.0 + exp(-v)) * pair;
}
