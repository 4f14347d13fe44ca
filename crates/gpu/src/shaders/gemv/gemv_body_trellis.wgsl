// Trellis GEMV (one token), the f16 variant's body: one thread per 16 x 16 tile of Q. The
// thread loads its tile's 8 * BITS words with vector loads (lanes take consecutive tiles,
// so a subgroup's loads cover one contiguous stretch) and walks the 16 rows of the
// tail-biting stream out of registers. The math part (trellis_math_f16) says how a
// state becomes a value times x: TE is the type of x and of a row's running sum, tr_val
// the codebook value in TE, tr_te and tr_sum the conversions in and out. Each tile's 16 x
// values are scaled by a power of two into [1, 2) of their largest magnitude (so f16 sums
// of a tile row's 16 products stay in range), and a row's tiles are summed in f32.
// TPR threads share a tile row (the largest power of two up to 256 and the row's tile
// count); a workgroup covers WG / TPR tile rows and sums each row's TPR partials in
// workgroup memory. The hook tr_io (trellis_io_gemv, trellis_io_moe) places the
// workgroup's tile rows, x and output: the same body is the GEMV and the MoE GEMV of
// trellis experts. The hook tr_x_in (trellis_x_plain, trellis_x_hadamard) reads a tile's
// 16 x values, as they come or with the weight's input side applied. The generated part
// (registry/trellis_tile.rs) supplies tr_tile, which decodes one tile with literal word
// indices and adds its rows into acc, and tr_store.
const WG: u32 = 256u;
const TV: u32 = 2u * BITS;
const STREAM: u32 = 256u * BITS;
var<workgroup> part: array<f32, 16u * WG>;

alias XH = array<TE, 16>;

// The scale of the row sums that tr_val leaves out (MUL1's 1 / 147.8).
fn tr_row_scale() -> f32 {
    if (CODEBOOK == 2u) {
        return bitcast<f32>(0x3BDDB447u);
    }
    return 1.0;
}

// The 32 stream bits starting `off` bits into word a (b follows a).
fn tr_funnel(a: u32, b: u32, off: u32) -> u32 {
    return select((a << off) | (b >> (32u - off)), a, off == 0u);
}

// State j of a row: bits j * BITS .. j * BITS + 15 of the 96-bit window h:m:l, MSB first.
// j is a literal, so the branches fold away.
fn tr_state(h: u32, m: u32, l: u32, j: u32) -> u32 {
    let b = j * BITS;
    if (b <= 16u) {
        return (h >> (16u - b)) & 0xFFFFu;
    }
    if (b < 32u) {
        return ((h << (b - 16u)) | (m >> (48u - b))) & 0xFFFFu;
    }
    if (b <= 48u) {
        return (m >> (48u - b)) & 0xFFFFu;
    }
    return ((m << (b - 48u)) | (l >> (80u - b))) & 0xFFFFu;
}

// The 16 values of a row whose stream starts `off` bits into word a (b, c, d follow),
// times the tile's x, summed in TE, returned in f32.
fn tr_row(a: u32, b: u32, c: u32, d: u32, off: u32, xh: XH) -> f32 {
    let h = tr_funnel(a, b, off);
    let m = tr_funnel(b, c, off);
    let l = tr_funnel(c, d, off);
    var s = tr_val(tr_state(h, m, l, 0u)) * xh[0];
    s = fma(tr_val(tr_state(h, m, l, 1u)), xh[1], s);
    s = fma(tr_val(tr_state(h, m, l, 2u)), xh[2], s);
    s = fma(tr_val(tr_state(h, m, l, 3u)), xh[3], s);
    s = fma(tr_val(tr_state(h, m, l, 4u)), xh[4], s);
    s = fma(tr_val(tr_state(h, m, l, 5u)), xh[5], s);
    s = fma(tr_val(tr_state(h, m, l, 6u)), xh[6], s);
    s = fma(tr_val(tr_state(h, m, l, 7u)), xh[7], s);
    s = fma(tr_val(tr_state(h, m, l, 8u)), xh[8], s);
    s = fma(tr_val(tr_state(h, m, l, 9u)), xh[9], s);
    s = fma(tr_val(tr_state(h, m, l, 10u)), xh[10], s);
    s = fma(tr_val(tr_state(h, m, l, 11u)), xh[11], s);
    s = fma(tr_val(tr_state(h, m, l, 12u)), xh[12], s);
    s = fma(tr_val(tr_state(h, m, l, 13u)), xh[13], s);
    s = fma(tr_val(tr_state(h, m, l, 14u)), xh[14], s);
    s = fma(tr_val(tr_state(h, m, l, 15u)), xh[15], s);
    return tr_sum(s);
}

// Threads per tile row for `cols` columns (the launcher's trellis_tile_tpr).
fn tr_tpr(cols: u32) -> u32 {
    let kt = cols / 16u;
    return select(1u << firstLeadingBit(max(kt, 1u)), WG, kt >= WG);
}

// 16 activations scaled into [1, 2) of the largest magnitude, in TE, and the power of two
// that undoes the scale.
fn tr_x_scaled(x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
    xh: ptr<function, XH>) -> f32 {
    let m4 = max(max(abs(x0), abs(x1)), max(abs(x2), abs(x3)));
    let m = max(max(max(m4.x, m4.y), max(m4.z, m4.w)), 1e-30);
    let e = bitcast<u32>(m) & 0x7F800000u;
    let s = bitcast<f32>(0x7F000000u - e);
    let h0 = x0 * s;
    let h1 = x1 * s;
    let h2 = x2 * s;
    let h3 = x3 * s;
    *xh = XH(tr_te(h0.x), tr_te(h0.y), tr_te(h0.z), tr_te(h0.w),
        tr_te(h1.x), tr_te(h1.y), tr_te(h1.z), tr_te(h1.w),
        tr_te(h2.x), tr_te(h2.y), tr_te(h2.z), tr_te(h2.w),
        tr_te(h3.x), tr_te(h3.y), tr_te(h3.z), tr_te(h3.w));
    return bitcast<f32>(e);
}

fn gemv_trellis_run(ids: Ids) {
    let kt_n = p.cols / 16u;
    let tpr = tr_tpr(p.cols);
    let per = WG / tpr;
    let io = tr_io(ids, per);
    let tr = io.tr0 + ids.lid / tpr;
    let lane = ids.lid % tpr;
    var acc: array<f32, 16>;
    if (tr < io.tr_end) {
        for (var kt = lane; kt < kt_n; kt += tpr) {
            var xh: XH;
            let inv = tr_x_in(io, kt, ids.lid, &xh);
            tr_tile((tr * kt_n + kt) * TV, xh, inv, &acc);
        }
    }
    tr_store(acc, ids.lid);
    workgroupBarrier();
    // Row o's partials are part[r * WG + trl * TPR + j] (o = 16 trl + r, j < TPR): one
    // pass when TPR <= 16, else 16-way sums back into part, then TPR / 16 of them per row
    // (16 KiB of workgroup memory in all, the WebGPU default limit).
    let scale = tr_row_scale() * tr_x_norm();
    let n_out = min(16u * per, (io.tr_end - min(io.tr0, io.tr_end)) * 16u);
    if (tpr <= 16u) {
        for (var o = ids.lid; o < n_out; o += WG) {
            let b = (o % 16u) * WG + (o / 16u) * tpr;
            var s = 0.0;
            for (var j = 0u; j < tpr; j++) {
                s += part[b + j];
            }
            out[io.out0 + o] = s * scale;
        }
        return;
    }
    let tpo = tpr / 16u;
    let o = ids.lid / tpo;
    let b = (o % 16u) * WG + (o / 16u) * tpr + ids.lid % tpo;
    var s = 0.0;
    for (var j = 0u; j < 16u; j++) {
        s += part[b + j * tpo];
    }
    workgroupBarrier();
    part[ids.lid] = s;
    workgroupBarrier();
    if (ids.lid < n_out) {
        var t = 0.0;
        for (var j = 0u; j < tpo; j++) {
            t += part[ids.lid * tpo + j];
        }
        out[io.out0 + ids.lid] = t * scale;
    }
}
