// add: dst[dst_offset + i] += src[src_offset + i % src_len] (residual add when src_len = n,
// a broadcast bias when src_len is the row length). One thread per element.
// Launcher: src/ops/elementwise.rs.
struct Params {
    n: u32,
    src_len: u32,
    dst_offset: u32,
    src_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn add(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.n) {
        return;
    }
    dst[p.dst_offset + i] += src[p.src_offset + i % p.src_len];
}
