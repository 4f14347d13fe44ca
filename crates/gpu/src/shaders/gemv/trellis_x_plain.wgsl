// The trellis tile GEMV's x as it comes (gemv_body_trellis.wgsl's tr_x_in hook): the
// launcher applied the weight's input side, if any, in a dispatch of its own.

// Tile kt's 16 x values, as tr_x_scaled returns them.
fn tr_x_in(io: TrIo, kt: u32, lid: u32, xh: ptr<function, XH>) -> f32 {
    let b = io.xb + kt * 4u;
    return tr_x_scaled(x[b], x[b + 1u], x[b + 2u], x[b + 3u], xh);
}

// What the row sums are multiplied by for x's sake.
fn tr_x_norm() -> f32 {
    return 1.0;
}
