// gemm_f32: out = W x for n_tokens > 1, W in f32 (decode helpers: formats/f32.wgsl).
// Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_f32(ids: Ids) {
    gemm_run(ids);
}
