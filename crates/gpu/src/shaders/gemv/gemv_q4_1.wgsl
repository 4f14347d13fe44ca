// gemv_q4_1: out = W x for one token, W in q4_1 (decode helpers: formats/q4_1.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q4_1(ids: Ids) {
    gemv_run(ids);
}
