// gemm_q4_k: out = W x for n_tokens > 1, W in q4_k (decode helpers: formats/q4_k.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_q4_k(ids: Ids) {
    gemm_run(ids);
}
