// gemv_q6_k: out = W x for one token, W in q6_k (decode helpers: formats/q6_k.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q6_k(ids: Ids) {
    gemv_run(ids);
}
