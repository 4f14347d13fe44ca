// gemv_q8_0: out = W x for one token, W in q8_0 (decode helpers: formats/q8_0.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q8_0(ids: Ids) {
    gemv_run(ids);
}
