// gemm_mxfp4: out = W x for n_tokens > 1, W in ggml's MXFP4 (decode helpers:
// formats/mxfp4.wgsl). Tiling: gemm_body.wgsl; launcher: src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemm_mxfp4(ids: Ids) {
    gemm_run(ids);
}
