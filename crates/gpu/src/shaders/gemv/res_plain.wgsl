// Residual-stream reader of the norm hook (x_norm.wgsl): the stream as it is.
fn x_res(base: u32, k: u32, c4: u32) -> vec4<f32> {
    return x_group(base, k, c4);
}
