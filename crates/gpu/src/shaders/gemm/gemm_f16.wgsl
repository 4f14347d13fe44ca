// gemm_f16: out = W x for n_tokens > 1, W in f16 (decode helpers: formats/f16.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_f16(ids: Ids) {
    gemm_run(ids);
}
