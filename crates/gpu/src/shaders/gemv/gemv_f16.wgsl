// gemv_f16: out = W x for one token, W in f16 (decode helpers: formats/f16.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_f16(ids: Ids) {
    gemv_run(ids);
}
