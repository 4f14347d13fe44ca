// The matmul output (matmul_io.wgsl's binding 3), coherent: kernels whose workgroups read
// rows other workgroups wrote in the same dispatch (moe_store_combine.wgsl) must not see
// stale first-level cache lines.
@group(0) @binding(3) @coherent var<storage, read_write> out: array<f32>;
