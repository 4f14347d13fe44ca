// GEMV input hook, plain: the kernel reads x as it is (gemv, gemv_multi).
fn x_in(base: u32, k: u32, c4: u32) -> vec4<f32> {
    return x_group(base, k, c4);
}

fn x_end(ids: Ids) -> f32 {
    return 1.0;
}

// x rows are one row width apart.
const X_ROW: u32 = 1u;
