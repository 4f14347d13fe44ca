// moe_hadamard_scale: hadamard_scale per MoE slot row, each row scaled by the vector of the
// matrix its slot routes to (stacked trellis experts, every matrix with its own suh / svh).
// Row j of the [rows, cols] output belongs to slot j / parts and multiplies stacked matrix
// m = ids[j / parts] * parts + j % parts (parts = 2: gate and up of one expert).
// mode 0 (input side):  out[j] = H_block(s[m] * x[j / x_div]), x_div = slots per x row;
// mode 1 (output side): out[j] = s[m] * H_block(x[j]).
// Output rows are dense (row j at j * cols), which makes the [slots, parts * cols] layout of
// a gate|up result. Workgroup b (folded into x/y) transforms block b of the output
// (hadamard_body.wgsl). Bindings (Read3Write layout): 1 x (f32), 2 s (f32, [mats, cols]),
// 3 ids (u32 per slot), 4 out (read_write, f32). Launcher: ops/moe_hadamard_scale.rs.

struct Params {
    blocks: u32, // blocks in total (rows * cols / block)
    block: u32,  // power of two, 2 ..= MAX_BLOCK, dividing cols
    norm: f32,   // 1 / sqrt(block)
    cols: u32,   // values per row
    mode: u32,   // 0: scale then rotate; 1: rotate then scale
    parts: u32,  // output rows per slot (matrices per expert)
    x_div: u32,  // mode 0: output rows per x row
    mats: u32,   // stacked matrices (rows of s); ids past them are clamped
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn moe_hadamard_scale(
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
    let j = base / p.cols;
    let c0 = base % p.cols;
    let m = min(ids[j / p.parts] * p.parts + j % p.parts, p.mats - 1u);
    let sb = m * p.cols + c0;
    let xb = select(base, (j / p.x_div) * p.cols + c0, p.mode == 0u);
    for (var i = lid; i < p.block; i += WG) {
        let xi = x[xb + i];
        v[i] = select(xi, xi * s[sb + i], p.mode == 0u);
    }
    hadamard_butterfly(lid, p.block);
    for (var i = lid; i < p.block; i += WG) {
        let r = v[i] * p.norm;
        out[base + i] = select(r * s[sb + i], r, p.mode == 0u);
    }
}
