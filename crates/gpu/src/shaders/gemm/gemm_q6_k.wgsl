// gemm_q6_k: out = W x for n_tokens > 1, W in q6_k (decode helpers: formats/q6_k.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_q6_k(ids: Ids) {
    gemm_run(ids);
}
