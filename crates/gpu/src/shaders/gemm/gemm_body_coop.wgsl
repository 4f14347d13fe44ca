// GEMM body on cooperative matrices (variant Coop: tensor cores through
// VK_KHR_cooperative_matrix; needs subgroups of exactly 32, 16x16x16 f16 -> f32 configs).
// Workgroup (gx, gy) computes rows TM*gx .. + TM and tokens TN*gy .. + TN, TM = TN = 64.
// Per 32-element unit: threads 0..63 dequantize one weight row's unit into wt (f16, row
// major), threads 64..127 convert the 64 tokens' activations into xt (f16, token major);
// then subgroup s multiplies its 32x32 quadrant (rows 32 (s / 2), tokens 32 (s % 2)) as
// 2x2 tiles of 16x16, accumulating in f32. The accumulators go through ct (token major) so
// edge tiles store with bounds checks and every store to out is coalesced.
// Grid: (ceil(rows / TM), ceil(n_tokens / TN), 1).
const WG: u32 = 128u;
const TM: u32 = 64u;
const TN: u32 = 64u;
// Row pitch of wt and xt in halves: 32 + 8 keeps rows 16-byte aligned and spreads banks.
const LD: u32 = 40u;
// Row pitch of ct in floats.
const LDC: u32 = 68u;
var<workgroup> wt: array<f16, 2560>; // TM x LD
var<workgroup> xt: array<f16, 2560>; // TN x LD
var<workgroup> ct: array<f32, 4352>; // TN x LDC

fn gemm_run(ids: Ids) {
    let row0 = ids.wid.x * TM;
    let t0 = ids.wid.y * TN;
    let c4 = p.cols / 4u;
    let units = units_per_row();
    let rq = (ids.sg / 2u) * 32u;
    let tq = (ids.sg % 2u) * 32u;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    for (var u = 0u; u < units; u++) {
        if (ids.lid < TM) {
            let row = row0 + ids.lid;
            let wu = load_unit(min(row, p.rows - 1u), u);
            for (var i = 0u; i < 8u; i++) {
                let v = vec4<f16>(select(vec4<f32>(0.0), wu[i], row < p.rows));
                let b = ids.lid * LD + i * 4u;
                wt[b] = v.x;
                wt[b + 1u] = v.y;
                wt[b + 2u] = v.z;
                wt[b + 3u] = v.w;
            }
        } else {
            for (var k = 0u; k < 8u; k++) {
                let idx = (ids.lid - TM) + k * TM;
                let tl = idx / 8u;
                let part = idx % 8u;
                let t = t0 + tl;
                let src = p.x_offset + min(t, p.n_tokens - 1u) * c4 + min(u * 8u + part, c4 - 1u);
                let ok = t < p.n_tokens && u * 8u + part < c4;
                let v = vec4<f16>(select(vec4<f32>(0.0), x[src], ok));
                let b = tl * LD + part * 4u;
                xt[b] = v.x;
                xt[b + 1u] = v.y;
                xt[b + 2u] = v.z;
                xt[b + 3u] = v.w;
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk += 16u) {
            // coopLoadT: row major (A: rows x k); coopLoad: column major (B: element (k, t)
            // at xt[t * LD + k]).
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&wt[rq * LD + kk], LD);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&wt[(rq + 16u) * LD + kk], LD);
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&xt[tq * LD + kk], LD);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&xt[(tq + 16u) * LD + kk], LD);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }
    // Column major (element (r, t) at ct[t * LDC + r]): token-major rows of outputs.
    coopStore(c00, &ct[tq * LDC + rq], LDC);
    coopStore(c01, &ct[(tq + 16u) * LDC + rq], LDC);
    coopStore(c10, &ct[tq * LDC + rq + 16u], LDC);
    coopStore(c11, &ct[(tq + 16u) * LDC + rq + 16u], LDC);
    workgroupBarrier();
    for (var i = ids.lid; i < TM * TN; i += WG) {
        let tl = i / TM;
        let rl = i % TM;
        if (row0 + rl < p.rows && t0 + tl < p.n_tokens) {
            store_out(t0 + tl, row0 + rl, ct[tl * LDC + rl]);
        }
    }
}
