// gemm_q4_0: out = W x for n_tokens > 1, W in q4_0 (decode helpers: formats/q4_0.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_q4_0(ids: Ids) {
    gemm_run(ids);
}
