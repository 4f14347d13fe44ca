// hadamard_scale: block-Hadamard rotation with a per-column scale, the two sides of a
// trellis matmul (W = diag(svh) H_n Q H_k diag(suh), so W x = svh * H_n(Q H_k(suh * x))).
// mode 0 (input side):  out[t, c] = H_block(s * x[t])[c], out dense from 0;
// mode 1 (output side): out[t, c] = s[c] * H_block(x[t])[c], written at
//                       out_offset + t * out_stride + c.
// Workgroup b (folded into x/y) transforms block b of the [tokens, cols] input in
// workgroup memory (hadamard_body.wgsl). Bindings (Read2Write
// layout): 1 x (f32), 2 s (f32, cols values), 3 out (read_write, f32).
// Launcher: ops/hadamard.rs (record_hadamard_scale).

struct Params {
    blocks: u32,     // blocks in total (n_tokens * cols / block)
    block: u32,      // power of two, 2 ..= MAX_BLOCK, dividing cols
    x_offset: u32,   // float index of the first value in x
    norm: f32,       // 1 / sqrt(block)
    cols: u32,       // values per token
    mode: u32,       // 0: scale then rotate; 1: rotate then scale (strided output)
    out_offset: u32, // mode 1: float index of (token 0, column 0) in out
    out_stride: u32, // mode 1: floats between tokens in out
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn hadamard_scale(
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
    let c0 = base % p.cols;
    for (var i = lid; i < p.block; i += WG) {
        let xi = x[p.x_offset + base + i];
        v[i] = select(xi, xi * s[c0 + i], p.mode == 0u);
    }
    hadamard_butterfly(lid, p.block);
    let t = base / p.cols;
    for (var i = lid; i < p.block; i += WG) {
        let r = v[i] * p.norm;
        if (p.mode == 0u) {
            out[base + i] = r;
        } else {
            out[p.out_offset + t * p.out_stride + c0 + i] = r * s[c0 + i];
        }
    }
}
