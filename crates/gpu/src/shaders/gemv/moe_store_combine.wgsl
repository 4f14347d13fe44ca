// MoE GEMV output hook of moe_gemv_silu_combine: the down experts' GEMV with moe_combine
// folded in. Each slot's rows go to out (y) as in moe_store.wgsl; then the workgroup counts
// its arrival at (token, row block), and the workgroup that completes the token's k slots
// of that row block (k = slots per token) writes dst[token, rows] (+)= Σ_j wts[token·k + j]
// · y[token·k + j, rows], summed in moe_combine's order (the same floats). The count is a
// device-scope release/acquire pair (storageBarrier is a device-scope fence for storage
// memory) and out is coherent (out_coherent.wgsl), so the rows of the other slots are
// visible. The completing workgroup resets its counter: the counters start each dispatch
// at zero. Params' out_offset = k | accumulate << 16 (one matrix per expert).
@group(0) @binding(5) var<storage, read> combine_wts: array<f32>;
@group(0) @binding(6) var<storage, read_write> combine_dst: array<f32>;
@group(0) @binding(7) var<storage, read_write> arrivals: array<atomic<u32>>;

var<workgroup> completes: u32;

fn slot_parts() -> u32 {
    return 1u;
}

fn moe_store(ids: Ids, m: MoeSlot, t: f32) {
    let row = m.lr0 + ids.lid;
    let live = ids.lid < NR && row < p.n_tokens;
    if (live) {
        out[m.slot * p.out_stride + row] = t;
    }
    let k = p.out_offset & 0xFFFFu;
    let token = m.slot / k;
    let c = token * ids.nwg.x + ids.wid.x;
    storageBarrier();
    if (ids.lid == 0u) {
        completes = u32(atomicAdd(&arrivals[c], 1u) == k - 1u);
    }
    if (workgroupUniformLoad(&completes) == 0u) {
        return;
    }
    storageBarrier();
    if (live) {
        let d = token * p.n_tokens + row;
        var acc = select(0.0, combine_dst[d], (p.out_offset >> 16u) == 1u);
        for (var j = 0u; j < k; j++) {
            let s = token * k + j;
            acc += combine_wts[s] * out[s * p.out_stride + row];
        }
        combine_dst[d] = acc;
    }
    if (ids.lid == 0u) {
        atomicStore(&arrivals[c], 0u);
    }
}
