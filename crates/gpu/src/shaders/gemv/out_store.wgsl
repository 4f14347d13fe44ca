// GEMV output hook, plain: row `row` of the single token gets v.
// (`pair`, row row ^ 1's value, is unused: OUT_PAIR is false.)
const OUT_PAIR: bool = false;
// Rows in their weight's order (out_swiglu pairs gate and up rows).
const OUT_GATE_UP: bool = false;

fn put_out(row: u32, v: f32, pair: f32) {
    store_out(0u, row, v);
}
