// gemv_q4_0: out = W x for one token, W in q4_0 (decode helpers: formats/q4_0.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q4_0(ids: Ids) {
    gemv_run(ids);
}
