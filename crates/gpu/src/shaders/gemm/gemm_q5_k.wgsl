// gemm_q5_k: out = W x for n_tokens > 1, W in q5_k (decode helpers: formats/q5_k.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_q5_k(ids: Ids) {
    gemm_run(ids);
}
