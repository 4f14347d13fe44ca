// moe_hadamard_swiglu: what runs between the gate|up and down GEMVs of stacked trellis
// experts with SiLU gating. For slot j (expert e = ids[j]) and block b of the f columns:
//   g = svh[2e] * H(yq[j] gate block b),  u = svh[2e + 1] * H(yq[j] up block b),
//   out[j] block b = H(suh[e] * silu(g) * u)
// (each H normalized by 1 / sqrt(block)): gate|up's output side (moe_hadamard_scale mode 1),
// silu_mul and down's input side (mode 0) in one dispatch; both sides rotate blocks of the
// same size over the same f columns. Workgroup b (folded into x/y) takes block b of the
// [slots, f] output. Bindings (Read4Write layout): 1 yq (f32, [slots, 2f]: a slot's gate
// rows then its up rows, as moe_gemv writes a two-part stack), 2 svh (gate|up's, [2 mats, f]),
// 3 suh (down's, [mats, f]), 4 ids (u32 per slot), 5 out (read_write, f32, [slots, f]).
// Launcher: ops/moe_hadamard_scale.rs.

struct Params {
    blocks: u32, // blocks in total (slots * cols / block)
    block: u32,  // power of two, 2 ..= MAX_BLOCK / 2, dividing cols
    norm: f32,   // 1 / sqrt(block)
    cols: u32,   // f: values per gate (up, output) row
    mats: u32,   // experts (rows of suh); ids past them are clamped
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> yq: array<f32>;
@group(0) @binding(2) var<storage, read> svh: array<f32>;
@group(0) @binding(3) var<storage, read> suh: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn moe_hadamard_swiglu(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let b = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every thread returns or none does (barriers follow).
    if (b >= p.blocks) {
        return;
    }
    let n = p.block;
    let base = b * n;
    let j = base / p.cols;
    let c0 = base % p.cols;
    let e = min(ids[j], p.mats - 1u);
    // The gate block in v[0 .. n], the up block in v[n .. 2n]: one pass rotates both.
    let yb = 2u * j * p.cols + c0;
    for (var i = lid; i < n; i += WG) {
        v[i] = yq[yb + i];
        v[n + i] = yq[yb + p.cols + i];
    }
    hadamard_butterfly_n(lid, n, 2u * n);
    let sg = 2u * e * p.cols + c0;
    let sd = e * p.cols + c0;
    for (var i = lid; i < n; i += WG) {
        let g = v[i] * p.norm * svh[sg + i];
        let u = v[n + i] * p.norm * svh[sg + p.cols + i];
        v[i] = g / (1.0 + exp(-g)) * u * suh[sd + i];
    }
    hadamard_butterfly(lid, n);
    for (var i = lid; i < n; i += WG) {
        out[base + i] = v[i] * p.norm;
    }
}
