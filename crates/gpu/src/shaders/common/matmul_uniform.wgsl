// The matmul kernels' parameters (matmul_io.wgsl's Params) as one uniform for the dispatch.
@group(0) @binding(0) var<uniform> p: Params;
