// gemv_multi body with 8-bit activations (variant Dp4a, formats with integer codes): as
// gemv_multi_body.wgsl, but each token's x tile is quantized per unit while it is loaded
// (q8_act.wgsl), and each thread reads its two rows' codes once (unit_q8) and multiplies
// them with every token's codes by dot4I8Packed (dot_q8).
// Grid: x/y fold ceil(rows / NR) workgroups, z = ceil(n_tokens / MT) passes.
const WG: u32 = 256u;
const TU: u32 = 16u;
const PAIRS: u32 = WG / TU;
// Token t's unit ul: codes xq[2 s], xq[2 s + 1] and (d, d sum q) xd[s], s = t * TU + ul.
var<workgroup> xq: array<vec4<u32>, MT * TU * 2u>;
var<workgroup> xd: array<vec2<f32>, MT * TU>;
// Partial sums for reduce_multi.
var<workgroup> xs: array<vec4<f32>, TU * PAIRS>;

// Rows a and b's codes times token t's unit ul.
fn tok2_q8(a: WQ8, b: WQ8, t: u32, ul: u32) -> vec2<f32> {
    let s = t * TU + ul;
    let lo = xq[2u * s];
    let hi = xq[2u * s + 1u];
    let d = xd[s];
    return vec2<f32>(dot_q8(a, lo, hi, d), dot_q8(b, lo, hi, d));
}

fn gemv_multi_run(ids: Ids) {
    let row0 = (ids.wid.x + ids.wid.y * ids.nwg.x) * NR;
    if (row0 >= p.rows) {
        return;
    }
    let tok0 = ids.wid.z * MT;
    let m = min(MT, p.n_tokens - tok0);
    let pr = ids.lid / TU;
    let ul = ids.lid % TU;
    let ra = min(row0 + 2u * pr, p.rows - 1u);
    let rb = min(row0 + 2u * pr + 1u, p.rows - 1u);
    let units = units_per_row();
    let c4 = p.cols / 4u;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < units; t0 += TU) {
        // This tile's weights first, so their loads are in flight while x is staged (no
        // compiler moves loads across the barrier); the last tile's idle lanes load a
        // clamped unit they never use.
        let u = t0 + ul;
        let wa = unit_q8(ra, min(u, units - 1u));
        let wb = unit_q8(rb, min(u, units - 1u));
        if (ids.lid < m * TU) {
            let t = ids.lid / TU;
            let l = ids.lid % TU;
            let q = quant_unit(p.x_offset + (tok0 + t) * c4, (t0 + l) * 8u, c4);
            xq[2u * ids.lid] = q.lo;
            xq[2u * ids.lid + 1u] = q.hi;
            xd[ids.lid] = q.d;
        }
        workgroupBarrier();
        if (u < units) {
            a0 += vec4<f32>(tok2_q8(wa, wb, 0u, ul), tok2_q8(wa, wb, 1u, ul));
            if (m > 2u) {
                a1 += vec4<f32>(tok2_q8(wa, wb, 2u, ul), tok2_q8(wa, wb, 3u, ul));
            }
            if (m > 4u) {
                a2 += vec4<f32>(tok2_q8(wa, wb, 4u, ul), tok2_q8(wa, wb, 5u, ul));
            }
            if (m > 6u) {
                a3 += vec4<f32>(tok2_q8(wa, wb, 6u, ul), tok2_q8(wa, wb, 7u, ul));
            }
        }
        workgroupBarrier();
    }
    reduce_multi(ids, array<vec4<f32>, 4>(a0, a1, a2, a3), row0, tok0, m);
}
