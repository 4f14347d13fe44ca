// gemv_q5_1: out = W x for one token, W in q5_1 (decode helpers: formats/q5_1.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q5_1(ids: Ids) {
    gemv_run(ids);
}
