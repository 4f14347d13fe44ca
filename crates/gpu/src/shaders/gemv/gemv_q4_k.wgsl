// gemv_q4_k: out = W x for one token, W in q4_k (decode helpers: formats/q4_k.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_q4_k(ids: Ids) {
    gemv_run(ids);
}
