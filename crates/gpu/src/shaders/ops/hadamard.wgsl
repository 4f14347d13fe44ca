// hadamard: out = blocks of `block` consecutive values of x, each times H_block / sqrt(block)
// (normalized Sylvester Hadamard, as marlin_core::hadamard::rotate), for activations of
// weights stored rotated (W' = W H, so W x = W' (H x)). Workgroup b (folded into x/y)
// transforms block b in workgroup memory (hadamard_body.wgsl). Bindings
// (ReadWrite layout): 1 x (read, f32), 2 out (read_write, f32). Launcher: ops/hadamard.rs.

struct Params {
    blocks: u32,   // blocks in total (n_tokens * cols / block)
    block: u32,    // power of two, 2 ..= MAX_BLOCK
    x_offset: u32, // float index of the first value in x
    scale: f32,    // 1 / sqrt(block)
    _p0: u32,
    _p1: u32,
    _p2: u32,
    _p3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn hadamard(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let b = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every thread returns or none does (barriers follow).
    if (b >= p.blocks) {
        return;
    }
    let base = b * p.block;
    for (var i = lid; i < p.block; i += WG) {
        v[i] = x[p.x_offset + base + i];
    }
    hadamard_butterfly(lid, p.block);
    for (var i = lid; i < p.block; i += WG) {
        out[base + i] = v[i] * p.scale;
    }
}
