// gemv_bf16: out = W x for one token, W in bf16 (decode helpers: formats/bf16.wgsl).
// Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_bf16(ids: Ids) {
    gemv_run(ids);
}
