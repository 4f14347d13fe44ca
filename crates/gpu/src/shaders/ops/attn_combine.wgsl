// attn_combine: merges attn_split's partials of every (head h, token j) — one workgroup
// each — into out[out_offset + (j · n_heads + h) · head_dim ..]: with M the largest partial
// max, out = Σ_s e^(m_s − M) acc_s / Σ_s e^(m_s − M) l_s. Launcher:
// src/ops/attention_split.rs.
struct Params {
    n_heads: u32,
    head_dim: u32,
    n_splits: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn attn_combine(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let h = wid.x;
    let j = wid.y;
    let hd = p.head_dim;
    let base = (j * p.n_heads + h) * p.n_splits * (hd + 2u);
    var mx = -3.0e38;
    for (var s = 0u; s < p.n_splits; s++) {
        mx = max(mx, part[base + s * (hd + 2u)]);
    }
    var l = 0.0;
    for (var s = 0u; s < p.n_splits; s++) {
        let b = base + s * (hd + 2u);
        l += exp(part[b] - mx) * part[b + 1u];
    }
    let ob = p.out_offset + (j * p.n_heads + h) * hd;
    for (var d = lid; d < hd; d += WG) {
        var a = 0.0;
        for (var s = 0u; s < p.n_splits; s++) {
            let b = base + s * (hd + 2u);
            a = fma(exp(part[b] - mx), part[b + 2u + d], a);
        }
        out[ob + d] = a / l;
    }
}
