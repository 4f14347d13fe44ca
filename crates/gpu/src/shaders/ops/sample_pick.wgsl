// sample_pick: pass 2 of GPU sampling (body: ops/sample_body.wgsl). One workgroup per row
// merges the chunks' candidates into the row's CAND best, applies the CPU sampler's chain
// (top-k, then top-p over what is left, then min-p, then temperature) on them, and draws
// with the Gumbel race hashed from (seed, counter, token id), writing the token id.
// Exact whenever the kept set lies inside the CAND best (top_k ≤ CAND, or the top-p
// nucleus or the min-p cut reached within them); otherwise the race also takes every
// chunk's own winner (exact without filters; with a top-p beyond CAND tokens, top-p is not
// applied and min-p is).
@group(0) @binding(1) var<storage, read> prm: array<u32>;
@group(0) @binding(2) var<storage, read> scratch: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

var<private> s_base: u32;

fn elem(i: u32) -> vec2<u32> {
    let at = s_base + (i / CAND) * CW + 8u + i % CAND;
    return vec2<u32>(scratch[at], scratch[at + CAND]);
}

fn settings(row: u32) -> Settings {
    let b = p.prm_offset + row * 8u;
    return Settings(
        bitcast<f32>(prm[b]),
        prm[b + 1u],
        bitcast<f32>(prm[b + 2u]),
        bitcast<f32>(prm[b + 3u]),
        prm[b + 4u],
        prm[b + 5u],
        prm[b + 6u],
    );
}

@compute @workgroup_size(WG)
fn sample_pick(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row = wid.x;
    let s = settings(row);
    s_base = row * p.n_chunks * CW;
    // Row statistics from the chunk headers.
    var m = NEG;
    var sum = 0.0;
    var cnt = 0u;
    for (var c = lid; c < p.n_chunks; c += WG) {
        let h = s_base + c * CW;
        let cm = bitcast<f32>(scratch[h]);
        let cs = bitcast<f32>(scratch[h + 1u]);
        let nm = max(m, cm);
        if (cs > 0.0) {
            sum = sum * exp(m - nm) + cs * exp(cm - nm);
        }
        m = nm;
        cnt += scratch[h + 5u];
    }
    let ms = reduce_max_sum(lid, m, sum);
    let big_m = ms.x;
    let z = ms.y;
    _ = scan_u32(lid, cnt);
    let n_valid = workgroupUniformLoad(&uscan[WG - 1u]);
    let total = p.n_chunks * CAND;
    let per = (total + WG - 1u) / WG;
    let lo = min(lid * per, total);
    let hi = min(lo + per, total);
    let n_top = select_top(lid, lo, hi);
    let l0 = key_logit(top_key[0]);
    // Greedy: no temperature, top-k 1, an infinite logit, or nothing to sample.
    let greedy = s.temperature <= 0.0 || s.top_k == 1u || n_top == 0u
        || bitcast<u32>(l0) == 0x7F800000u;
    // Weights of the sorted candidates and their running sums.
    var l = NEG;
    var w = 0.0;
    if (lid < n_top) {
        l = key_logit(top_key[lid]);
        w = exp(l - big_m);
    }
    let incl = scan_f32(lid, w);
    let excl = incl - w;
    var n_last = 0u;
    if (n_top > 0u) {
        n_last = n_top - 1u;
    }
    let last_incl = workgroupUniformLoad(&fscan[n_last]);
    let k_ok = s.top_k > 0u && s.top_k < n_valid && s.top_k <= n_top;
    let k_idx = select(n_last, s.top_k - 1u, k_ok);
    let k_incl = workgroupUniformLoad(&fscan[k_idx]);
    let base = select(z, k_incl, k_ok);
    let use_p = s.top_p < 1.0;
    let p_mass = s.top_p * base;
    let use_m = s.min_p > 0.0;
    var tau = NEG;
    if (use_m) {
        tau = big_m + log(s.min_p);
    }
    let l_last = key_logit(top_key[n_last]);
    let resolved = n_top == n_valid || k_ok || (use_p && last_incl >= p_mass)
        || (use_m && l_last < tau);
    var best = NEG;
    var best_id = 0xFFFFFFFFu;
    let inv_t = 1.0 / max(s.temperature, 1e-30);
    if (!greedy && resolved) {
        let kept = lid < n_top && (!k_ok || lid < s.top_k) && (!use_p || excl < p_mass)
            && l >= tau;
        if (kept) {
            best = (l - big_m) * inv_t + gumbel(s, top_id[lid]);
            best_id = top_id[lid];
        }
    } else if (!greedy) {
        for (var i = lo; i < hi; i++) {
            let e = elem(i);
            if (e.x != 0u) {
                let li = key_logit(e.x);
                let sc = (li - big_m) * inv_t + gumbel(s, e.y);
                if (li >= tau && beats(sc, e.y, best, best_id)) {
                    best = sc;
                    best_id = e.y;
                }
            }
        }
        for (var c = lid; c < p.n_chunks; c += WG) {
            let h = s_base + c * CW;
            let wl = bitcast<f32>(scratch[h + 4u]);
            let wi = scratch[h + 3u];
            let sc = bitcast<f32>(scratch[h + 2u])
                + (bitcast<f32>(scratch[h]) - big_m) * inv_t;
            if (wi != 0xFFFFFFFFu && wl >= tau && beats(sc, wi, best, best_id)) {
                best = sc;
                best_id = wi;
            }
        }
    }
    let win = reduce_best(lid, best, best_id);
    if (lid == 0u) {
        var id = win.y;
        if (greedy || id == 0xFFFFFFFFu) {
            id = select(top_id[0], 0u, n_top == 0u);
        }
        out[p.out_offset + row] = id;
    }
}
