// GEMM body on cooperative matrices, K in chunks of several units (variant Coop and its
// token tiles CoopT32 / CoopT16 / CoopT128: tensor cores through VK_KHR_cooperative_matrix;
// needs subgroups of exactly 32, i.e. 4 per workgroup, and 16x16x16 f16 -> f32 configs).
//
// TT (1, 2, 4 or 8; a define) sets the tile: workgroup (gx, gy) computes rows TM*gx .. + TM
// and tokens TN*gy .. + TN with TM = 32 min(TT, 4), TN = 16 TT, over K chunks of KC =
// 256 / TT elements (KU = 8 / TT units). Each of the 128 threads dequantizes TM * KU / 128
// weight units into cw (f16, row major) and converts 8 vec4 of activations into cx (f16,
// token major), then one barrier, the products, and a second barrier before the next
// chunk. Staging (scalar f16 stores into workgroup memory) bounds the body, not the tensor
// cores (H200, q4_0 14336 x 4096 at 512 tokens with 64-token tiles: 922 µs, 719 without
// the products, 213 without the staging); TT 8 stages each weight element once per 128
// tokens instead of 64 (576 against 1,035 µs in run "AL").
//
// The weight staging, coop_stage_w (a slot of the chunk dequantized into cw), is a part of
// its own: gemm/coop_stage_unit.wgsl (the format's load_unit) or, for trellis,
// gemm/coop_stage_trellis.wgsl.
//
// WKM (a define) picks cw's layout: 0 row major (element (row, k) at row * LDW + k; slots
// walk a row's units, so loads coalesce, but the 32 lanes' scalar stores land in 8 banks);
// 1 K major (element (row, k) at k * LDW + row; slots walk rows, so each store instruction
// writes 64 contiguous bytes, and the A fragments load column major).
//
// Subgroup s owns rows 32 (s / SK) .. + 32 (2 row tiles) x all TN tokens (TT token tiles):
// 2 TT accumulators of 16x16 in f32. SK = 4 / min(TT, 4) subgroups share those rows, each
// taking one K slice (KS of the chunk's KC / 16 k-steps); their partial sums meet in cc at
// the end.
// Grid: (ceil(rows / TM), ceil(n_tokens / TN), S). S > 1 splits K: of the C = ceil(units /
// KU) chunks, workgroup z walks [z C / S, (z + 1) C / S) (chunk aligned) and stores its
// partial tile as tokens z n_tokens .. of out (the launcher binds step scratch there, laid
// out [S][n_tokens][rows], and gemm_splitk_reduce.wgsl sums the splits into the real
// output). S = 1 is the whole K straight into out.
const WG: u32 = 128u;
// Row groups of 32 (TT 8: 128 x 128 tiles, one unit per chunk).
const RG: u32 = min(TT, 4u);
const TM: u32 = 32u * RG;
const TN: u32 = 16u * TT;
const KU: u32 = 8u / TT;
const KC: u32 = 32u * KU;
const SK: u32 = 4u / RG;
// k-steps of 16 in a subgroup's K slice of a chunk.
const KS: u32 = KC / (16u * SK);
// Row pitch of cx (and of cw's rows or K rows) in halves: 8 more than the row keeps rows
// 16-byte aligned (as coopLoad wants) and shifts each row 4 banks, so the 8 rows of a
// fragment load hit distinct banks.
const LD: u32 = KC + 8u;
const LDW: u32 = (1u - WKM) * KC + WKM * TM + 8u;
// One 16x16 f32 tile per subgroup, column major (element (row i, token t) at t * 16 + i).
const CT: u32 = 256u;
var<workgroup> cw: array<f16, (1u - WKM) * TM * LDW + WKM * KC * LDW>;
var<workgroup> cx: array<f16, TN * LD>;
var<workgroup> cc: array<f32, 4u * CT>;

// Index in cw of (row rl, chunk element k).
fn cw_at(rl: u32, k: u32) -> u32 {
    if (WKM == 1u) {
        return k * LDW + rl;
    }
    return rl * LDW + k;
}

// Chunk slot s (0 .. TM * KU) of the weights as (row rl, unit ku of the chunk), the slots
// coop_stage_w stages: WKM 0 rl = s / KU, ku = s % KU (slots walk a row's units); WKM 1
// rl = s % TM, ku = s / TM (slots walk rows).
fn coop_slot(s: u32) -> vec2<u32> {
    if (WKM == 1u) {
        return vec2<u32>(s % TM, s / TM);
    }
    return vec2<u32>(s / KU, s % KU);
}

// Chunk slot s (0 .. TN * KC / 4) of the activations: token s / (KC / 4), vec4
// u0 * 8 + s % (KC / 4) of its row, as f16 into cx; zero past the tokens or the row.
fn coop_stage_x(t0: u32, u0: u32, s: u32) {
    let c4 = p.cols / 4u;
    let tl = s / (KC / 4u);
    let part = s % (KC / 4u);
    let t = t0 + tl;
    let k = u0 * 8u + part;
    let src = p.x_offset + min(t, p.n_tokens - 1u) * c4 + min(k, c4 - 1u);
    let v = vec4<f16>(select(vec4<f32>(0.0), x[src], t < p.n_tokens && k < c4));
    let b = tl * LD + part * 4u;
    cx[b] = v.x;
    cx[b + 1u] = v.y;
    cx[b + 2u] = v.z;
    cx[b + 3u] = v.w;
}

// Write accumulator tile (row tile r, token tile j) of every subgroup: each stores its tile
// in its slot of cc; then the TT row groups' SK partial tiles are summed and stored with
// bounds checks (consecutive threads: consecutive rows of one token) at output token
// zt + t (zt: the split's first token slot). Called by every thread with the same r, j
// (uniform: it holds barriers).
fn coop_emit(
    c: coop_mat16x16<f32, C>,
    r: u32,
    j: u32,
    row0: u32,
    t0: u32,
    zt: u32,
    lid: u32,
    sg: u32,
) {
    coopStore(c, &cc[sg * CT], 16u);
    workgroupBarrier();
    for (var e = lid; e < RG * CT; e += WG) {
        let g = e / CT;
        let o = e % CT;
        var sum = 0.0;
        for (var k = 0u; k < SK; k++) {
            sum += cc[(g * SK + k) * CT + o];
        }
        let row = row0 + g * 32u + r * 16u + o % 16u;
        let t = t0 + j * 16u + o / 16u;
        if (row < p.rows && t < p.n_tokens) {
            store_out(zt + t, row, sum);
        }
    }
    workgroupBarrier();
}

fn gemm_run(ids: Ids) {
    let row0 = ids.wid.x * TM;
    let t0 = ids.wid.y * TN;
    let units = units_per_row();
    // This subgroup's first row in cw and first K element of its slice of a chunk.
    let rs = (ids.sg / SK) * 32u;
    let ks = (ids.sg % SK) * KS * 16u;
    // c<r><j>: row tile r, token tile j; only j < TT are used.
    var c00 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();
    var c04 = coop_mat16x16<f32, C>();
    var c14 = coop_mat16x16<f32, C>();
    var c05 = coop_mat16x16<f32, C>();
    var c15 = coop_mat16x16<f32, C>();
    var c06 = coop_mat16x16<f32, C>();
    var c16 = coop_mat16x16<f32, C>();
    var c07 = coop_mat16x16<f32, C>();
    var c17 = coop_mat16x16<f32, C>();
    // This split's units (workgroup uniform: the loop holds barriers).
    let chunks = (units + KU - 1u) / KU;
    let z = ids.wid.z;
    let u_begin = (z * chunks / ids.nwg.z) * KU;
    let u_end = min(((z + 1u) * chunks / ids.nwg.z) * KU, units);
    let zt = z * p.n_tokens;
    for (var u0 = u_begin; u0 < u_end; u0 += KU) {
        for (var s = ids.lid; s < TM * KU; s += WG) {
            coop_stage_w(row0, u0, units, s);
        }
        for (var m = 0u; m < 8u; m++) {
            coop_stage_x(t0, u0, ids.lid + m * WG);
        }
        workgroupBarrier();
        // Fixed trip count (the slice offset only moves the pointers): control flow stays
        // uniform around the cooperative operations.
        for (var q = 0u; q < KS; q++) {
            let kk = ks + q * 16u;
            // coopLoadT: row major (A: element (row, k) at cw[row * LDW + k]); coopLoad:
            // column major (A with WKM 1: at cw[k * LDW + row]; B: (k, t) at cx[t * LD + k]).
            var a0: coop_mat16x16<f16, A>;
            var a1: coop_mat16x16<f16, A>;
            if (WKM == 1u) {
                a0 = coopLoad<coop_mat16x16<f16, A>>(&cw[kk * LDW + rs], LDW);
                a1 = coopLoad<coop_mat16x16<f16, A>>(&cw[kk * LDW + rs + 16u], LDW);
            } else {
                a0 = coopLoadT<coop_mat16x16<f16, A>>(&cw[rs * LDW + kk], LDW);
                a1 = coopLoadT<coop_mat16x16<f16, A>>(&cw[(rs + 16u) * LDW + kk], LDW);
            }
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&cx[kk], LD);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c10 = coopMultiplyAdd(a1, b0, c10);
            if (TT >= 2u) {
                let b1 = coopLoad<coop_mat16x16<f16, B>>(&cx[16u * LD + kk], LD);
                c01 = coopMultiplyAdd(a0, b1, c01);
                c11 = coopMultiplyAdd(a1, b1, c11);
            }
            if (TT >= 4u) {
                let b2 = coopLoad<coop_mat16x16<f16, B>>(&cx[32u * LD + kk], LD);
                let b3 = coopLoad<coop_mat16x16<f16, B>>(&cx[48u * LD + kk], LD);
                c02 = coopMultiplyAdd(a0, b2, c02);
                c12 = coopMultiplyAdd(a1, b2, c12);
                c03 = coopMultiplyAdd(a0, b3, c03);
                c13 = coopMultiplyAdd(a1, b3, c13);
            }
            if (TT >= 8u) {
                let b4 = coopLoad<coop_mat16x16<f16, B>>(&cx[64u * LD + kk], LD);
                let b5 = coopLoad<coop_mat16x16<f16, B>>(&cx[80u * LD + kk], LD);
                c04 = coopMultiplyAdd(a0, b4, c04);
                c14 = coopMultiplyAdd(a1, b4, c14);
                c05 = coopMultiplyAdd(a0, b5, c05);
                c15 = coopMultiplyAdd(a1, b5, c15);
                let b6 = coopLoad<coop_mat16x16<f16, B>>(&cx[96u * LD + kk], LD);
                let b7 = coopLoad<coop_mat16x16<f16, B>>(&cx[112u * LD + kk], LD);
                c06 = coopMultiplyAdd(a0, b6, c06);
                c16 = coopMultiplyAdd(a1, b6, c16);
                c07 = coopMultiplyAdd(a0, b7, c07);
                c17 = coopMultiplyAdd(a1, b7, c17);
            }
        }
        workgroupBarrier();
    }
    coop_emit(c00, 0u, 0u, row0, t0, zt, ids.lid, ids.sg);
    coop_emit(c10, 1u, 0u, row0, t0, zt, ids.lid, ids.sg);
    if (TT >= 2u) {
        coop_emit(c01, 0u, 1u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c11, 1u, 1u, row0, t0, zt, ids.lid, ids.sg);
    }
    if (TT >= 4u) {
        coop_emit(c02, 0u, 2u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c12, 1u, 2u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c03, 0u, 3u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c13, 1u, 3u, row0, t0, zt, ids.lid, ids.sg);
    }
    if (TT >= 8u) {
        coop_emit(c04, 0u, 4u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c14, 1u, 4u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c05, 0u, 5u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c15, 1u, 5u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c06, 0u, 6u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c16, 1u, 6u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c07, 0u, 7u, row0, t0, zt, ids.lid, ids.sg);
        coop_emit(c17, 1u, 7u, row0, t0, zt, ids.lid, ids.sg);
    }
}
