// gemv_f32: out = W x for one token, W in f32 (decode helpers: formats/f32.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_f32(ids: Ids) {
    gemv_run(ids);
}
