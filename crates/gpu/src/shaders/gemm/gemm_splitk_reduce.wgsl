// gemm_splitk_reduce: sums the S partial outputs of a split-K coop GEMM
// (gemm_body_coop_chunk.wgsl run with grid z = S) into the real output, at the place
// store_out would have put them: partial (split z, token t, row r) at
// part[in_offset + (z n_tokens + t) rows + r] adds into
// out[out_offset + t out_stride + row_offset + r]. Splits are summed in order z = 0, 1, ..
// (no float atomics in WGSL). One thread per (token, row); grid (ceil(rows / WG), n_tokens,
// 1). Launcher: src/ops/gemm_splitk.rs.
struct Params {
    rows: u32,
    n_tokens: u32,
    splits: u32,
    row_offset: u32,
    out_stride: u32,
    out_offset: u32,
    in_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn gemm_splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let t = gid.y;
    if (r >= p.rows || t >= p.n_tokens) {
        return;
    }
    let plane = p.n_tokens * p.rows;
    var i = p.in_offset + t * p.rows + r;
    var sum = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        sum += part[i];
        i += plane;
    }
    out[p.out_offset + t * p.out_stride + p.row_offset + r] = sum;
}
