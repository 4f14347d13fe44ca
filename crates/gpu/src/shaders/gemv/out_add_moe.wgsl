// GEMV output hook of gemv_add_moe: as out_add.wgsl, and the previous layer's MoE output
// (read by this layer's gemv_norm_moe, see res_moe.wgsl) is added into the residual stream
// too: sum over slots s of moe_w[s] · moe_y[s] (slot rows of out_stride floats, the
// stream's width; the slot count is p.n_tokens). Each row has one writer, so the update
// is race-free, and the combine needs no dispatch of its own.
@group(0) @binding(4) var<storage, read> moe_y: array<f32>;
@group(0) @binding(5) var<storage, read> moe_w: array<f32>;

fn put_out(row: u32, v: f32) {
    let r = p.row_offset + row;
    var m = 0.0;
    for (var s = 0u; s < p.n_tokens; s++) {
        m += moe_w[s] * moe_y[s * p.out_stride + r];
    }
    let i = p.out_offset + r;
    out[i] = out[i] + v + m;
}
