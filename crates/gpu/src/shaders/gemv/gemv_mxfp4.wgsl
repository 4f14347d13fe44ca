// gemv_mxfp4: out = W x for one token, W in ggml's MXFP4 (decode helpers:
// formats/mxfp4.wgsl). Geometry and reduction: gemv_body.wgsl + reduce_*.wgsl; launcher:
// src/ops/matmul.rs.
@compute @workgroup_size(WG)
fn gemv_mxfp4(ids: Ids) {
    gemv_run(ids);
}
