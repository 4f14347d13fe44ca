// The trellis tile GEMV's x with the weight's input side applied here, H_128(suh ⊙ x)
// (gemv_body_trellis.wgsl's tr_x_in hook; gemv_hadamard, moe_gemv_hadamard): a 128-column
// Hadamard block is 8 tiles, which the launcher's geometry (threads per tile row a
// multiple of 8, rows a multiple of 128 columns) gives to 8 adjacent threads of one
// subgroup in the same loop pass. Each thread rotates its tile's 16 values in registers
// (index bits 0-3), then the 8 threads exchange theirs by subgroupShuffleXor (bits 4-6:
// the thread's tile within the block, lid % 8 where subgroup lanes follow the invocation
// index, as on every GPU we know). Unnormalized: tr_x_norm scales the row sums.
// The scales suh (binding declared by the entry: `[matrices, cols]` f32 as vec4) start at
// vec4 io.sb for the workgroup's matrix.

// The 4-point Hadamard of v's lanes.
fn tr_h4(v: vec4<f32>) -> vec4<f32> {
    let a = vec4<f32>(v.x + v.y, v.x - v.y, v.z + v.w, v.z - v.w);
    return vec4<f32>(a.x + a.z, a.y + a.w, a.x - a.z, a.y - a.w);
}

// One butterfly stage across threads: the partner's values are lid ^ m's.
fn tr_hx(v: vec4<f32>, m: u32, hi: bool) -> vec4<f32> {
    let o = subgroupShuffleXor(v, m);
    return select(v + o, o - v, hi);
}

// Tile kt's 16 x values rotated with its block, as tr_x_scaled returns them.
fn tr_x_in(io: TrIo, kt: u32, lid: u32, xh: ptr<function, XH>) -> f32 {
    let b = io.xb + kt * 4u;
    let s = io.sb + kt * 4u;
    let v0 = tr_h4(x[b] * suh[s]);
    let v1 = tr_h4(x[b + 1u] * suh[s + 1u]);
    let v2 = tr_h4(x[b + 2u] * suh[s + 2u]);
    let v3 = tr_h4(x[b + 3u] * suh[s + 3u]);
    var x0 = (v0 + v1) + (v2 + v3);
    var x1 = (v0 - v1) + (v2 - v3);
    var x2 = (v0 + v1) - (v2 + v3);
    var x3 = (v0 - v1) - (v2 - v3);
    for (var m = 1u; m < 8u; m <<= 1u) {
        let hi = (lid & m) != 0u;
        x0 = tr_hx(x0, m, hi);
        x1 = tr_hx(x1, m, hi);
        x2 = tr_hx(x2, m, hi);
        x3 = tr_hx(x3, m, hi);
    }
    return tr_x_scaled(x0, x1, x2, x3, xh);
}

// 1 / sqrt(128), the normalization tr_x_in leaves out.
fn tr_x_norm() -> f32 {
    return 0.08838834764831845;
}
