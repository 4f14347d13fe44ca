// mla_latent: the latent side of an MLA layer, one workgroup per token t. The token's
// projection row x[t · (q_lora + r + rd) ..] = [c_q (q_lora) ‖ c_kv (r) ‖ k_pe (rd)]
// (q_lora = 0 without a query bottleneck) becomes RMSNorm(c_q) · w_q in cq[t · q_lora ..]
// and the cache row [RMSNorm(c_kv) · w_kv ‖ RoPE(k_pe)] (f16 pairs) of slot
// seqs[slots_offset + t]. w_q ‖ w_kv sit back to back at vecs[w_offset]; RoPE rows are
// cs[cs_offset + t · rd ..] (cos ‖ sin of the half angles), adjacent pairs, or half-split
// pairs when the top bit of `rope` is set. Launcher: src/ops/attn_mla.rs.
struct Params {
    q_lora: u32,
    r: u32,
    rope: u32, // rd | neox << 31
    eps: f32,
    w_offset: u32,
    slots_offset: u32,
    cs_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> vecs: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;
@group(0) @binding(4) var<storage, read> seqs: array<u32>;
@group(0) @binding(5) var<storage, read_write> cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> cq: array<f32>;

const WG: u32 = 128u;

var<workgroup> red: array<f32, WG>;

// Σ v over the workgroup (every thread gets it).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            red[lid] += red[lid + k];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// Cache value e of the row: normed c_kv below r, rotated k_pe above.
fn latent(t: u32, xb: u32, inv: f32, e: u32) -> f32 {
    let r = p.r;
    if (e < r) {
        return x[xb + e] * inv * vecs[p.w_offset + p.q_lora + e];
    }
    let half = (p.rope & 0x7FFFFFFFu) / 2u;
    let pr = rope_pair(p.rope, e - r);
    let pb = xb + r;
    let cb = p.cs_offset + t * 2u * half;
    return rope_rotate(pr, x[pb + pr.ia], x[pb + pr.ib], cs[cb + pr.k], cs[cb + half + pr.k]);
}

@compute @workgroup_size(WG)
fn mla_latent(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = wid.x;
    let ql = p.q_lora;
    let r = p.r;
    let w = r + (p.rope & 0x7FFFFFFFu);
    let row = t * (ql + w);
    var sq = 0.0;
    for (var d = lid; d < ql; d += WG) {
        let v = x[row + d];
        sq = fma(v, v, sq);
    }
    let inv_q = inverseSqrt(workgroup_sum(lid, sq) / f32(max(ql, 1u)) + p.eps);
    for (var d = lid; d < ql; d += WG) {
        cq[t * ql + d] = x[row + d] * inv_q * vecs[p.w_offset + d];
    }
    let xb = row + ql;
    var sk = 0.0;
    for (var d = lid; d < r; d += WG) {
        let v = x[xb + d];
        sk = fma(v, v, sk);
    }
    let inv_kv = inverseSqrt(workgroup_sum(lid, sk) / f32(r) + p.eps);
    let cb = seqs[p.slots_offset + t] * (w / 2u);
    for (var i = lid; i < w / 2u; i += WG) {
        let a = latent(t, xb, inv_kv, 2u * i);
        let b = latent(t, xb, inv_kv, 2u * i + 1u);
        cache[cb + i] = pack2x16float(vec2<f32>(a, b));
    }
}
