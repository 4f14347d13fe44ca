// mla_q_pack: the queries of a prompt chunk's MLA attention as one matrix for the score GEMM
// (src/ops/attn_mla_gemm.rs): row (j · H + h) = scale · [q̃ (r) ‖ RoPE(q_pe) (rd)] of token j,
// head h (q̃ at q_abs[(j · H + h) · r ..], q_pe at q_pe[(j · H + h) · rd ..], the RoPE row of
// token j at cs[cs_offset + j · rd ..]). One thread per value, grid folded into x/y.
struct Params {
    n_heads: u32,
    r: u32,
    rope: u32, // rd | neox << 31
    scale: f32,
    rows: u32, // n_tokens · n_heads
    cs_offset: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q_abs: array<f32>;
@group(0) @binding(2) var<storage, read> q_pe: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn mla_q_pack(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    let rd = p.rope & 0x7FFFFFFFu;
    let w = p.r + rd;
    let e = (wid.x + wid.y * nwg.x) * WG + lid;
    if (e >= p.rows * w) {
        return;
    }
    let q = e / w;
    let d = e % w;
    var v: f32;
    if (d < p.r) {
        v = q_abs[q * p.r + d];
    } else {
        v = rope_q(q * rd, p.cs_offset + (q / p.n_heads) * rd, d - p.r);
    }
    dst[e] = v * p.scale;
}
