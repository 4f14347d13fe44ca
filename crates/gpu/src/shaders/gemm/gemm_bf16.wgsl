// gemm_bf16: out = W x for n_tokens > 1, W in bf16 (decode helpers: formats/bf16.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_bf16(ids: Ids) {
    gemm_run(ids);
}
