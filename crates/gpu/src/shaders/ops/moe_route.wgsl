// MoE routing, one thread per token: scores from the router logits (softmax, or sigmoid),
// + correction bias for selection only, group-limited choice (groups ranked by the sum of
// their two best choices), top-k (ties: lower expert first), weights = scores of the picked
// experts, renormalised when asked (sigmoid: + 1e-20 in the denominator), times the routed
// scale. Writes expert ids and weights of token t's slots at t * top_k + j.
// Launcher: src/ops/moe.rs (at most MAX_E experts, 32 groups, 16 slots per token).
struct Params {
    n_tokens: u32,
    n_experts: u32,
    top_k: u32,
    flags: u32,      // bit 0 sigmoid, bit 1 renormalise, bit 2 correction bias
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

const WG: u32 = 64u;
const MAX_E: u32 = 256u;
const LOW: f32 = -3.0e38;

fn score(x: f32, mx: f32, z: f32) -> f32 {
    if ((p.flags & 1u) != 0u) {
        return 1.0 / (1.0 + exp(-x));
    }
    return exp(x - mx) / z;
}

@compute @workgroup_size(WG)
fn moe_route(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = (wid.x + wid.y * nwg.x) * WG + lid;
    if (t >= p.n_tokens) {
        return;
    }
    let ne = min(p.n_experts, MAX_E);
    let row = t * p.n_experts;
    var mx = LOW;
    for (var e = 0u; e < ne; e++) {
        mx = max(mx, logits[row + e]);
    }
    var z = 0.0;
    for (var e = 0u; e < ne; e++) {
        z += exp(logits[row + e] - mx);
    }
    var choice: array<f32, MAX_E>;
    for (var e = 0u; e < ne; e++) {
        var c = score(logits[row + e], mx, z);
        if ((p.flags & 4u) != 0u) {
            c += bias[p.bias_off + e];
        }
        choice[e] = c;
    }
    if (p.n_group > 1u) {
        let ng = min(p.n_group, 32u);
        let size = ne / ng;
        var gs: array<f32, 32>;
        for (var g = 0u; g < ng; g++) {
            var b1 = LOW;
            var b2 = LOW;
            for (var i = 0u; i < size; i++) {
                let v = choice[g * size + i];
                if (v > b1) {
                    b2 = b1;
                    b1 = v;
                } else if (v > b2) {
                    b2 = v;
                }
            }
            gs[g] = select(b1 + b2, b1, size < 2u);
        }
        var kept = 0u;
        for (var j = 0u; j < min(p.topk_group, ng); j++) {
            var bi = 0xFFFFFFFFu;
            for (var g = 0u; g < ng; g++) {
                if ((kept & (1u << g)) == 0u && (bi == 0xFFFFFFFFu || gs[g] > gs[bi])) {
                    bi = g;
                }
            }
            kept |= 1u << bi;
        }
        for (var e = 0u; e < ne; e++) {
            if ((kept & (1u << min(e / max(size, 1u), 31u))) == 0u) {
                choice[e] = LOW;
            }
        }
    }
    let k = min(p.top_k, 16u);
    var picked: array<u32, 16>;
    var taken: array<u32, 8>;
    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
        var bi = 0xFFFFFFFFu;
        for (var e = 0u; e < ne; e++) {
            let free = (taken[e / 32u] & (1u << (e % 32u))) == 0u;
            if (free && (bi == 0xFFFFFFFFu || choice[e] > choice[bi])) {
                bi = e;
            }
        }
        bi = min(bi, ne - 1u);
        taken[bi / 32u] |= 1u << (bi % 32u);
        picked[j] = bi;
        sum += score(logits[row + bi], mx, z);
    }
    var denom = 1.0;
    if ((p.flags & 2u) != 0u) {
        denom = sum + select(0.0, 1e-20, (p.flags & 1u) != 0u);
    }
    let scale = bitcast<f32>(p.scale);
    for (var j = 0u; j < k; j++) {
        let e = picked[j];
        ids[t * p.top_k + j] = e;
        wts[t * p.top_k + j] = score(logits[row + e], mx, z) / denom * scale;
    }
}
