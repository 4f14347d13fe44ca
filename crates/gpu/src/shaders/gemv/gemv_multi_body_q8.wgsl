// gemv_multi body with 8-bit activations (variant Dp4a, formats with integer codes): x is
// the act_q8 form of the input (ops/act_q8.wgsl: codes of unit s = t * units + u at vec4
// 2 s, 2 s + 1; its (d, d sum q) in the scale region from vec4 2 n units, two units per
// vec4), quantized once per input rather than once per workgroup.
// A workgroup of WG threads covers NR = 4 * QUADS rows and MT tokens: thread (g, ul) owns
// rows 4 g .. 4 g + 3 and walks units ul, ul + TU, ... (TU, a define: 16 for the wide
// variant, 64 to spread short weights over more workgroups); per unit it decodes its four rows'
// codes once (unit_q8) and multiplies them with every token's codes by dot4I8Packed, the
// activations read straight from memory (TU lanes read TU consecutive units: coalesced, and
// every thread of the workgroup reads the same ones, so they come from L1). No workgroup
// memory or barrier until the reduction.
// Accumulators are named per token (vec4: the four rows), never dynamically indexed.
// Rows and tokens: the multi_rows hook (one weight, or MoE chunks of slots sharing an expert).
const WG: u32 = 256u;
const QUADS: u32 = WG / TU;
// Two tokens' partial sums per reduction round.
var<workgroup> xs: array<vec4<f32>, 2u * WG>;

// Token s's unit (s = t * units + u) times the four rows' codes.
fn tok4(w0: WQ8, w1: WQ8, w2: WQ8, w3: WQ8, s: u32, sbase: u32) -> vec4<f32> {
    let lo = bitcast<vec4<u32>>(x[2u * s]);
    let hi = bitcast<vec4<u32>>(x[2u * s + 1u]);
    let dv = x[sbase + s / 2u];
    let d = select(dv.xy, dv.zw, (s & 1u) == 1u);
    return vec4<f32>(dot_q8(w0, lo, hi, d), dot_q8(w1, lo, hi, d), dot_q8(w2, lo, hi, d),
        dot_q8(w3, lo, hi, d));
}

// Sum the TU lanes of tokens 2k and 2k + 1 (a, b: this thread's four rows each) and store.
fn reduce_tok2(ids: Ids, a: vec4<f32>, b: vec4<f32>, k: u32, tile: MTile) {
    let g = ids.lid / TU;
    let ul = ids.lid % TU;
    // Slot ul * QUADS + (g ^ (ul % QUADS)): conflict-free stores and column reads.
    let slot = ul * QUADS + (g ^ (ul % QUADS));
    xs[slot] = a;
    xs[WG + slot] = b;
    workgroupBarrier();
    if (ids.lid < 2u * NR) {
        let tt = ids.lid / NR;
        let rl = ids.lid % NR;
        let g2 = rl / 4u;
        var s = 0.0;
        for (var q = 0u; q < TU; q++) {
            s += xs[tt * WG + q * QUADS + (g2 ^ (q % QUADS))][rl % 4u];
        }
        let t = 2u * k + tt;
        let row = tile.row0 + rl;
        if (t < tile.m && row < tile.nrows) {
            store_out(tile.tok0 + t, row, s);
        }
    }
    workgroupBarrier();
}

fn gemv_multi_run(ids: Ids) {
    let tile = multi_rows(ids);
    if (!tile.live) {
        return;
    }
    let row0 = tile.row0;
    let tok0 = tile.tok0;
    let m = tile.m;
    let g = ids.lid / TU;
    let ul = ids.lid % TU;
    let r = vec4<u32>(tile.wrow0)
        + min(vec4<u32>(row0 + 4u * g) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(tile.nrows - 1u));
    let units = units_per_row();
    let sbase = 2u * tile.xrows * units;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    if (m == MT) {
        // A full pass: no token branch between one token's activation loads and the next,
        // so the loads of all MT tokens can be in flight together. MT is a define: the
        // `MT > k` tests here and below fold away, so a kernel holds (and allocates
        // registers for) only its MT accumulators.
        for (var u = ul; u < units; u += TU) {
            let w0 = unit_q8(r.x, u);
            let w1 = unit_q8(r.y, u);
            let w2 = unit_q8(r.z, u);
            let w3 = unit_q8(r.w, u);
            let s = tok0 * units + u;
            a0 += tok4(w0, w1, w2, w3, s, sbase);
            if (MT > 1u) {
                a1 += tok4(w0, w1, w2, w3, s + units, sbase);
            }
            if (MT > 2u) {
                a2 += tok4(w0, w1, w2, w3, s + 2u * units, sbase);
                a3 += tok4(w0, w1, w2, w3, s + 3u * units, sbase);
            }
            if (MT > 4u) {
                a4 += tok4(w0, w1, w2, w3, s + 4u * units, sbase);
                a5 += tok4(w0, w1, w2, w3, s + 5u * units, sbase);
                a6 += tok4(w0, w1, w2, w3, s + 6u * units, sbase);
                a7 += tok4(w0, w1, w2, w3, s + 7u * units, sbase);
            }
        }
    }
    for (var u = select(ul, units, m == MT); u < units; u += TU) {
        let w0 = unit_q8(r.x, u);
        let w1 = unit_q8(r.y, u);
        let w2 = unit_q8(r.z, u);
        let w3 = unit_q8(r.w, u);
        let s = tok0 * units + u;
        a0 += tok4(w0, w1, w2, w3, s, sbase);
        if (MT > 1u && m > 1u) {
            a1 += tok4(w0, w1, w2, w3, s + units, sbase);
        }
        if (MT > 2u && m > 2u) {
            a2 += tok4(w0, w1, w2, w3, s + 2u * units, sbase);
        }
        if (MT > 3u && m > 3u) {
            a3 += tok4(w0, w1, w2, w3, s + 3u * units, sbase);
        }
        if (MT > 4u && m > 4u) {
            a4 += tok4(w0, w1, w2, w3, s + 4u * units, sbase);
        }
        if (MT > 5u && m > 5u) {
            a5 += tok4(w0, w1, w2, w3, s + 5u * units, sbase);
        }
        if (MT > 6u && m > 6u) {
            a6 += tok4(w0, w1, w2, w3, s + 6u * units, sbase);
        }
        if (MT > 7u && m > 7u) {
            a7 += tok4(w0, w1, w2, w3, s + 7u * units, sbase);
        }
    }
    reduce_tok2(ids, a0, a1, 0u, tile);
    if (MT > 2u && m > 2u) {
        reduce_tok2(ids, a2, a3, 1u, tile);
    }
    if (MT > 4u && m > 4u) {
        reduce_tok2(ids, a4, a5, 2u, tile);
    }
    if (MT > 6u && m > 6u) {
        reduce_tok2(ids, a6, a7, 3u, tile);
    }
}
