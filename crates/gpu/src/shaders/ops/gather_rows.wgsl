// gather_rows: out row i = src row ids[i], f32 rows of c4 vec4s (MoE steps gather token rows
// by expert and back; prompt steps gather the rows the LM head needs). One workgroup per
// output row (folded into x/y above the per-dimension grid limit), its threads copying
// consecutive vec4s, so a subgroup's loads and stores cover one contiguous run (the output
// is stored as floats: it may start at any float). Ids past src_rows leave their row
// unwritten. Launcher: src/ops/embed.rs (record_gather_rows).
struct Params {
    n_rows: u32,
    c4: u32,       // vec4s per row
    src_rows: u32,
    ids_off: u32,  // u32 index of id 0
    out_off: u32,  // float index of output row 0
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn gather_rows(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.n_rows) {
        return;
    }
    let id = ids[p.ids_off + r];
    if (id >= p.src_rows) {
        return;
    }
    let s = id * p.c4;
    let o = p.out_off + r * p.c4 * 4u;
    for (var k = lid; k < p.c4; k += WG) {
        let v = src[s + k];
        let i = o + 4u * k;
        out[i] = v.x;
        out[i + 1u] = v.y;
        out[i + 2u] = v.z;
        out[i + 3u] = v.w;
    }
}
