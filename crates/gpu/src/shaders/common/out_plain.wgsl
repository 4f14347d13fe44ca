// The matmul output (matmul_io.wgsl's binding 3).
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
