// GEMV input hook of moe_gemv_silu: each x row is a gate|up row (gate then up, cols floats
// each) and the kernel multiplies silu(gate) · up, the silu_mul output, so no separate
// gating dispatch runs between the gate|up and down projections. silu(g) = g · sigmoid(g),
// as silu_mul computes it.
fn x_in(base: u32, k: u32, c4: u32) -> vec4<f32> {
    let g = x[base + min(k, c4 - 1u)];
    let u = x[base + c4 + min(k, c4 - 1u)];
    return select(vec4<f32>(0.0), g / (vec4<f32>(1.0) + exp(-g)) * u, k < c4);
}

fn x_end(ids: Ids) -> f32 {
    return 1.0;
}

// x rows are gate|up: two row widths apart.
const X_ROW: u32 = 2u;
