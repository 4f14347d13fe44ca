// kv_write: token t's K and V rows (row_len f32 values each, at k_offset + t · src_stride
// of k and v_offset + t · src_stride of v) go to slot slots[slot_offset + t] of the paged
// caches kc and vc (slot = block · 16 + position % 16, from the block table). Caches are
// u32 words: f16 pairs when is_f16 = 1, f32 bits otherwise. One thread per (token, pair of
// values); row_len is even. Launcher: src/ops/kv.rs.
struct Params {
    n_tokens: u32,
    row_len: u32,
    is_f16: u32,
    slot_offset: u32,
    k_offset: u32,
    v_offset: u32,
    src_stride: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> slots: array<u32>;
@group(0) @binding(4) var<storage, read_write> kc: array<u32>;
@group(0) @binding(5) var<storage, read_write> vc: array<u32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn kv_write(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = (wid.x + wid.y * nwg.x) * WG + lid;
    let pairs = p.row_len / 2u;
    if (g >= p.n_tokens * pairs) {
        return;
    }
    let t = g / pairs;
    let e = 2u * (g % pairs);
    let ka = k[p.k_offset + t * p.src_stride + e];
    let kb = k[p.k_offset + t * p.src_stride + e + 1u];
    let va = v[p.v_offset + t * p.src_stride + e];
    let vb = v[p.v_offset + t * p.src_stride + e + 1u];
    let at = slots[p.slot_offset + t] * p.row_len + e;
    if (p.is_f16 == 1u) {
        kc[at / 2u] = pack2x16float(vec2<f32>(ka, kb));
        vc[at / 2u] = pack2x16float(vec2<f32>(va, vb));
    } else {
        kc[at] = bitcast<u32>(ka);
        kc[at + 1u] = bitcast<u32>(kb);
        vc[at] = bitcast<u32>(va);
        vc[at + 1u] = bitcast<u32>(vb);
    }
}
