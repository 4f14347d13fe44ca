// GEMV reduction in workgroup memory (any GW, any subgroup size): every thread stores its
// 4 row sums (reusing the x tile, free after the body's last barrier); 4 threads per row
// each add a quarter of the row's GW partials (NR * 4 of those sums, in passes of WG when
// there are more: GW 8 makes NR 128), then one of them adds the 4 quarters. The quarter
// sums sit past the partials (xs[WG ..]; the x tile holds WG + 4 NR).
// reduce_sum returns row lid's total to threads lid < NR (0 elsewhere); callers store it.
fn reduce_sum(ids: Ids, acc: vec4<f32>) -> f32 {
    xs[ids.lid] = acc;
    workgroupBarrier();
    let q = GW / 4u;
    for (var base = 0u; base < NR * 4u; base += WG) {
        let i = base + ids.lid;
        if (i < NR * 4u) {
            let row = i / 4u;
            let first = (row / 4u) * GW + (i % 4u) * q;
            var part = 0.0;
            for (var k = 0u; k < q; k++) {
                part += xs[first + k][row % 4u];
            }
            xs[WG + i].x = part;
        }
    }
    workgroupBarrier();
    var t = 0.0;
    if (ids.lid < NR) {
        let b = WG + ids.lid * 4u;
        t = (xs[b].x + xs[b + 1u].x) + (xs[b + 2u].x + xs[b + 3u].x);
    }
    return t;
}

fn reduce_rows(ids: Ids, acc: vec4<f32>, row0: u32) {
    let t = reduce_sum(ids, acc);
    let row = row0 + ids.lid;
    if (ids.lid < NR && row < p.rows) {
        // The other row of the adjacent pair (same quad), for hooks that need both.
        var pair = 0.0;
        if (OUT_PAIR) {
            let b = WG + (ids.lid ^ 1u) * 4u;
            pair = (xs[b].x + xs[b + 1u].x) + (xs[b + 2u].x + xs[b + 3u].x);
        }
        put_out(row, t, pair);
    }
}
