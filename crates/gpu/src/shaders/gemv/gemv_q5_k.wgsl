// gemv_q5_k: out = W x for one token, W in q5_k (decode helpers: formats/q5_k.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q5_k(ids: Ids) {
    gemv_run(ids);
}
