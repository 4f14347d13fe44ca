// gemm_q5_1: out = W x for n_tokens > 1, W in q5_1 (decode helpers: formats/q5_1.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_q5_1(ids: Ids) {
    gemm_run(ids);
}
