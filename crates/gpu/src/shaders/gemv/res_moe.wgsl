// Residual-stream reader of gemv_norm_moe (with x_norm.wgsl): the stream plus the previous
// layer's MoE output, which no combine dispatch has added yet: sum over slots s of
// moe_w[s] · moe_y[s] (slot rows of cols floats; the slot count is p.n_tokens, free in a
// one-token GEMV). gemv_add_moe adds the same sum into the stream later in the layer.
@group(0) @binding(5) var<storage, read> moe_y: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> moe_w: array<f32>;

fn x_res(base: u32, k: u32, c4: u32) -> vec4<f32> {
    var v = x_group(base, k, c4);
    if (k < c4) {
        for (var s = 0u; s < p.n_tokens; s++) {
            v += moe_w[s] * moe_y[s * c4 + k];
        }
    }
    return v;
}
