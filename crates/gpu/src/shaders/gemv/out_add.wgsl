// GEMV output hook of gemv_add: v is added to the output (the residual stream), so no
// separate add dispatch runs after it. Each row has one writer, so the update is race-free.
const OUT_PAIR: bool = false;
// Rows in their weight's order (out_swiglu pairs gate and up rows).
const OUT_GATE_UP: bool = false;

fn put_out(row: u32, v: f32, pair: f32) {
    let i = p.out_offset + p.row_offset + row;
    out[i] = out[i] + v;
}
