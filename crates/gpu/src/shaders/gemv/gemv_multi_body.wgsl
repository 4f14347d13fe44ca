// gemv_multi body (small-batch decode, f32 activations): out = W x for up to MT tokens per
// workgroup, each weight unit read and decoded once (load_unit) and applied to every token,
// so a step of m tokens reads the weights once instead of m times.
// A workgroup of WG threads covers NR = 2 * PAIRS rows: thread (pr, ul) owns rows
// 2 pr, 2 pr + 1 and unit ul of each x tile (TU units of every token, loaded coalesced into
// workgroup memory, laid out so the TU lanes reading vec4 j of their units hit distinct
// banks). Two rows per thread: each x vec4 read from workgroup memory serves two decoded
// rows while the decoded pair (64 floats) still fits in registers.
// Accumulators are named per token pair (never dynamically indexed, so they stay in
// registers); pairs past the pass's token count m are skipped, and the odd token of the
// last pair reads stale x but is never stored.
// Grid and rows: the multi_rows hook (multi_rows_plain.wgsl: multi_tile.wgsl's tiles of one
// weight; multi_rows_moe.wgsl: MoE chunks of slots sharing an expert).
const WG: u32 = 256u;
const TU: u32 = 16u;
const PAIRS: u32 = WG / TU;
var<workgroup> xs: array<vec4<f32>, MT * TU * 8u>;

// Slot of vec4 j of token t's unit ul.
fn xs_at(t: u32, j: u32, ul: u32) -> u32 {
    return (t * 8u + j) * TU + (ul ^ j);
}

// Rows a and b's units times token t's unit ul.
fn tok2(a: Unit, b: Unit, t: u32, ul: u32) -> vec2<f32> {
    let x0 = xs[xs_at(t, 0u, ul)];
    let x1 = xs[xs_at(t, 1u, ul)];
    let x2 = xs[xs_at(t, 2u, ul)];
    let x3 = xs[xs_at(t, 3u, ul)];
    let x4 = xs[xs_at(t, 4u, ul)];
    let x5 = xs[xs_at(t, 5u, ul)];
    let x6 = xs[xs_at(t, 6u, ul)];
    let x7 = xs[xs_at(t, 7u, ul)];
    let da = ((dot(a[0], x0) + dot(a[1], x1)) + (dot(a[2], x2) + dot(a[3], x3)))
        + ((dot(a[4], x4) + dot(a[5], x5)) + (dot(a[6], x6) + dot(a[7], x7)));
    let db = ((dot(b[0], x0) + dot(b[1], x1)) + (dot(b[2], x2) + dot(b[3], x3)))
        + ((dot(b[4], x4) + dot(b[5], x5)) + (dot(b[6], x6) + dot(b[7], x7)));
    return vec2<f32>(da, db);
}

fn gemv_multi_run(ids: Ids) {
    let tile = multi_rows(ids);
    if (!tile.live) {
        return;
    }
    let row0 = tile.row0;
    let tok0 = tile.tok0;
    let m = tile.m;
    let pr = ids.lid / TU;
    let ul = ids.lid % TU;
    let ra = tile.wrow0 + min(row0 + 2u * pr, tile.nrows - 1u);
    let rb = tile.wrow0 + min(row0 + 2u * pr + 1u, tile.nrows - 1u);
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
        let wa = load_unit(ra, min(u, units - 1u));
        let wb = load_unit(rb, min(u, units - 1u));
        for (var i = ids.lid; i < m * TU * 8u; i += WG) {
            let t = i / (TU * 8u);
            let l = (i / 8u) % TU;
            let j = i % 8u;
            xs[xs_at(t, j, l)] = x_group(p.x_offset + (tok0 + t) * c4, (t0 + l) * 8u + j, c4);
        }
        workgroupBarrier();
        if (u < units) {
            a0 += vec4<f32>(tok2(wa, wb, 0u, ul), tok2(wa, wb, 1u, ul));
            if (m > 2u) {
                a1 += vec4<f32>(tok2(wa, wb, 2u, ul), tok2(wa, wb, 3u, ul));
            }
            if (m > 4u) {
                a2 += vec4<f32>(tok2(wa, wb, 4u, ul), tok2(wa, wb, 5u, ul));
            }
            if (m > 6u) {
                a3 += vec4<f32>(tok2(wa, wb, 6u, ul), tok2(wa, wb, 7u, ul));
            }
        }
        workgroupBarrier();
    }
    reduce_multi(ids, array<vec4<f32>, 4>(a0, a1, a2, a3), tile);
}
