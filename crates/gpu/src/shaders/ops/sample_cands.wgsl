// sample_cands: pass 1 of GPU sampling (body: ops/sample_body.wgsl). One workgroup per
// (chunk of CHUNK tokens, row) writes the chunk's header — max logit, Σ exp(l − max), the
// Gumbel race winner over the whole chunk (score relative to the chunk max, id, logit) and
// the number of candidate tokens — and its CAND highest logits (keys, then ids) to the
// scratch, CW words per chunk, rows n_chunks · CW words apart.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<u32>;
@group(0) @binding(3) var<storage, read_write> scratch: array<u32>;

var<private> x_base: u32;

fn elem(i: u32) -> vec2<u32> {
    return vec2<u32>(okey(x[x_base + i]), i);
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
fn sample_cands(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let c = wid.x;
    let row = wid.y;
    let s = settings(row);
    x_base = p.x_offset + row * p.stride;
    let start = c * CHUNK;
    let end = min(start + CHUNK, p.n);
    let per = CHUNK / WG;
    let lo = min(start + lid * per, end);
    let hi = min(lo + per, end);
    // Per-thread max, Σ exp and valid count, then the chunk's.
    var m = NEG;
    var cnt = 0u;
    for (var i = lo; i < hi; i++) {
        if (okey(x[x_base + i]) != 0u) {
            m = max(m, x[x_base + i]);
            cnt += 1u;
        }
    }
    var sum = 0.0;
    for (var i = lo; i < hi; i++) {
        if (okey(x[x_base + i]) != 0u) {
            sum += exp(x[x_base + i] - m);
        }
    }
    let ms = reduce_max_sum(lid, m, sum);
    // The race: argmax over the chunk of (l − max) / T + g.
    var best = NEG;
    var best_id = 0xFFFFFFFFu;
    if (s.temperature > 0.0) {
        let inv_t = 1.0 / s.temperature;
        for (var i = lo; i < hi; i++) {
            let l = x[x_base + i];
            if (okey(l) != 0u) {
                let sc = (l - ms.x) * inv_t + gumbel(s, i);
                if (beats(sc, i, best, best_id)) {
                    best = sc;
                    best_id = i;
                }
            }
        }
    }
    let win = reduce_best(lid, best, best_id);
    // Valid count: reuse the u32 scan.
    _ = scan_u32(lid, cnt);
    let n_valid = workgroupUniformLoad(&uscan[WG - 1u]);
    let n_sel = select_top(lid, lo, hi);
    let base = (row * p.n_chunks + c) * CW;
    if (lid == 0u) {
        var win_logit = NEG;
        if (win.y != 0xFFFFFFFFu) {
            win_logit = x[x_base + win.y];
        }
        scratch[base] = bitcast<u32>(ms.x);
        scratch[base + 1u] = bitcast<u32>(ms.y);
        scratch[base + 2u] = win.x;
        scratch[base + 3u] = win.y;
        scratch[base + 4u] = bitcast<u32>(win_logit);
        scratch[base + 5u] = n_valid;
        scratch[base + 6u] = n_sel;
        scratch[base + 7u] = 0u;
    }
    scratch[base + 8u + lid] = top_key[lid];
    scratch[base + 8u + CAND + lid] = top_id[lid];
}
