// MoE routing, one workgroup per token and one thread per expert: scores from the router logits (softmax, or sigmoid),
// + correction bias for selection only, group-limited choice (groups ranked by the sum of
// their two best choices), top-k (ties: lower expert first), weights = scores of the picked
// experts, renormalised when asked (sigmoid: + 1e-20 in the denominator), times the routed
// scale. Writes expert ids and weights of token t's slots at t * S + j, S = top_k; with
// flag bit 3 (a shared expert stacked after the routed ones) S = top_k + 1 and slot
// t * S + top_k is (n_experts, 1): the shared expert runs as one more slot.
// The softmax's max and sum are workgroup tree reductions (sigmoid skips them). The top-k
// is one pass: each expert counts the choices that beat it (ties: lower expert first), its
// rank, so the picks cost two barriers instead of a tree reduction per pick (k of them, ~10
// barriers each; a single thread walking all experts k times took ~47 µs per decode step
// on an H200).
// Launcher: src/ops/moe.rs (at most MAX_E experts, 32 groups, 16 slots per token).
struct Params {
    n_tokens: u32,
    n_experts: u32,
    top_k: u32,
    flags: u32,      // bit 0 sigmoid, bit 1 renormalise, bit 2 correction bias, bit 3 shared slot
    n_group: u32,
    topk_group: u32,
    scale: u32,      // f32 bits
    bias_off: u32,   // float index of the bias in `bias`
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> wts: array<f32>;

const WG: u32 = 256u;
const MAX_E: u32 = 256u;
const LOW: f32 = -3.0e38;
const NONE: u32 = 0xFFFFFFFFu;

// Selection values, reduction scratch, group sums, kept groups, and the expert of each pick.
var<workgroup> choice: array<f32, MAX_E>;
var<workgroup> rv: array<f32, WG>;
var<workgroup> gs: array<f32, 32>;
var<workgroup> kept: u32;
var<workgroup> picked: array<u32, 16>;

fn score(x: f32, mx: f32, z: f32) -> f32 {
    if ((p.flags & 1u) != 0u) {
        return 1.0 / (1.0 + exp(-x));
    }
    return exp(x - mx) / z;
}

// max (op 0) or sum (op 1) of every thread's v.
fn reduce(lid: u32, v: f32, op: u32) -> f32 {
    rv[lid] = v;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lid < w) {
            rv[lid] = select(max(rv[lid], rv[lid + w]), rv[lid] + rv[lid + w], op == 1u);
        }
        workgroupBarrier();
    }
    let r = rv[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn moe_route(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let t = wid.x + wid.y * nwg.x;
    if (t >= p.n_tokens) {
        return;
    }
    let ne = min(p.n_experts, MAX_E);
    let row = t * p.n_experts;
    let e = lid;
    let live = e < ne;
    var x = LOW;
    if (live) {
        x = logits[row + e];
    }
    // Uniform: sigmoid scores need neither the max nor the sum.
    let softmax = (p.flags & 1u) == 0u;
    var mx = 0.0;
    var z = 1.0;
    if (softmax) {
        mx = reduce(lid, x, 0u);
        z = reduce(lid, select(0.0, exp(x - mx), live), 1u);
    }
    var c = LOW;
    if (live) {
        c = score(x, mx, z);
        if ((p.flags & 4u) != 0u) {
            c += bias[p.bias_off + e];
        }
    }
    choice[e] = c;
    workgroupBarrier();
    if (p.n_group > 1u) {
        let ng = min(p.n_group, 32u);
        let size = ne / ng;
        // Groups ranked by the sum of their two best choices.
        if (lid < ng) {
            var b1 = LOW;
            var b2 = LOW;
            for (var i = 0u; i < size; i++) {
                let v = choice[lid * size + i];
                if (v > b1) {
                    b2 = b1;
                    b1 = v;
                } else if (v > b2) {
                    b2 = v;
                }
            }
            gs[lid] = select(b1 + b2, b1, size < 2u);
        }
        workgroupBarrier();
        if (lid == 0u) {
            var k = 0u;
            for (var j = 0u; j < min(p.topk_group, ng); j++) {
                var bi = NONE;
                for (var g = 0u; g < ng; g++) {
                    if ((k & (1u << g)) == 0u && (bi == NONE || gs[g] > gs[bi])) {
                        bi = g;
                    }
                }
                k |= 1u << bi;
            }
            kept = k;
        }
        workgroupBarrier();
        // Experts of the other groups rank after every kept one (still by index).
        if (live && (kept & (1u << min(e / max(size, 1u), 31u))) == 0u) {
            c = LOW;
        }
        choice[e] = c;
        workgroupBarrier();
    }
    let k = min(min(p.top_k, 16u), ne);
    // This expert's rank: the choices that beat it.
    var rank = NONE;
    if (live) {
        rank = 0u;
        for (var j = 0u; j < ne; j++) {
            let cj = choice[j];
            rank += u32(cj > c || (cj == c && j < e));
        }
    }
    let mine = select(NONE, rank, rank < k);
    if (mine != NONE) {
        picked[mine] = e;
    }
    workgroupBarrier();
    // The picks' scores summed in pick order.
    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
        sum += score(logits[row + picked[j]], mx, z);
    }
    var denom = 1.0;
    if ((p.flags & 2u) != 0u) {
        denom = sum + select(0.0, 1e-20, (p.flags & 1u) != 0u);
    }
    let has_shared = (p.flags >> 3u) & 1u;
    let per = p.top_k + has_shared;
    if (mine != NONE) {
        ids[t * per + mine] = e;
        wts[t * per + mine] = score(x, mx, z) / denom * bitcast<f32>(p.scale);
    }
    if (has_shared == 1u && lid == 0u) {
        ids[t * per + p.top_k] = p.n_experts;
        wts[t * per + p.top_k] = 1.0;
    }
}
