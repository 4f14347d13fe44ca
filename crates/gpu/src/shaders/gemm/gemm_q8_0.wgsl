// gemm_q8_0: out = W x for n_tokens > 1, W in q8_0 (decode helpers: formats/q8_0.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_q8_0(ids: Ids) {
    gemm_run(ids);
}
