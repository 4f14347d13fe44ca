// moe_sort: a step's MoE slots grouped by expert, for moe_gemv_multi (prefill). One
// workgroup: counts per expert (workgroup atomics), their prefix sums and the chunks of up
// to MT slots per expert (thread 0, at most slots / MT + experts of them), then each slot's
// place p in the grouped order. Writes into `out` (u32): chunk c as (expert, start, count)
// at 3 c (count 0 past the last chunk, up to max_chunks); at xrow_off + p the x row of the
// slot placed at p (slot / slots_per_x); at inv_off + s the place of slot s. The order within
// an expert follows the atomics, so it may vary from run to run; each slot's output does
// not depend on it. With parts > 1 the slots are rows of matrices: slot s routes to matrix
// ids[s / parts] * parts + s % parts (trellis gate and up, each its own matrix), and
// n_experts counts the matrices. Launcher: src/ops/moe_grouped.rs.
struct Params {
    slots: u32,
    n_experts: u32,
    slots_per_x: u32,
    max_chunks: u32,
    xrow_off: u32,
    inv_off: u32,
    mt: u32,
    parts: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
const MAX_E: u32 = 256u;

var<workgroup> cnt: array<atomic<u32>, MAX_E>;
var<workgroup> next: array<atomic<u32>, MAX_E>;
var<workgroup> used: u32;

fn expert_of(s: u32) -> u32 {
    let parts = max(p.parts, 1u);
    return min(ids[s / parts] * parts + s % parts, min(p.n_experts, MAX_E) - 1u);
}

@compute @workgroup_size(WG)
fn moe_sort(@builtin(local_invocation_index) lid: u32) {
    let ne = min(p.n_experts, MAX_E);
    for (var e = lid; e < ne; e += WG) {
        atomicStore(&cnt[e], 0u);
    }
    workgroupBarrier();
    for (var s = lid; s < p.slots; s += WG) {
        atomicAdd(&cnt[expert_of(s)], 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        var start = 0u;
        var c = 0u;
        for (var e = 0u; e < ne; e++) {
            let n = atomicLoad(&cnt[e]);
            atomicStore(&next[e], start);
            for (var j = 0u; j < n && c < p.max_chunks; j += p.mt) {
                out[3u * c] = e;
                out[3u * c + 1u] = start + j;
                out[3u * c + 2u] = min(p.mt, n - j);
                c++;
            }
            start += n;
        }
        used = c;
    }
    workgroupBarrier();
    let first = used;
    for (var c = first + lid; c < p.max_chunks; c += WG) {
        out[3u * c] = 0u;
        out[3u * c + 1u] = 0u;
        out[3u * c + 2u] = 0u;
    }
    for (var s = lid; s < p.slots; s += WG) {
        let at = atomicAdd(&next[expert_of(s)], 1u);
        out[p.xrow_off + at] = s / max(p.slots_per_x, 1u);
        out[p.inv_off + s] = at;
    }
}
