// GEMM body, f16 tiles (variant F16, needs SHADER_F16): as gemm_body.wgsl, but the
// dequantized weight and activation tiles are stored and multiplied as f16 (half the
// workgroup memory); each 4-term dot is summed into f32 accumulators.
// Workgroup (gx, gy) computes rows TM*gx .. + TM and tokens
// TN*gy .. + TN. Per 32-element unit, thread i dequantizes row i's unit into wt and two
// vec4 of activations into xt; then each thread accumulates a 4-row x 4-token block.
// Grid: (ceil(rows / TM), ceil(n_tokens / TN), 1).
const WG: u32 = 64u;
const TM: u32 = 64u;
const TN: u32 = 16u;
var<workgroup> wt: array<vec4<f16>, 512>; // TM rows x 8 vec4
var<workgroup> xt: array<vec4<f16>, 128>; // TN tokens x 8 vec4

fn gemm_run(ids: Ids) {
    let row0 = ids.wid.x * TM;
    let t0 = ids.wid.y * TN;
    let rg = ids.lid / 4u;
    let tg = ids.lid % 4u;
    let c4 = p.cols / 4u;
    let units = units_per_row();
    var acc: array<vec4<f32>, 4>;
    for (var u = 0u; u < units; u++) {
        let row = row0 + ids.lid;
        let wu = load_unit(min(row, p.rows - 1u), u);
        for (var i = 0u; i < 8u; i++) {
            wt[ids.lid * 8u + i] = vec4<f16>(select(vec4<f32>(0.0), wu[i], row < p.rows));
        }
        for (var k = 0u; k < 2u; k++) {
            let idx = ids.lid * 2u + k;
            let t = t0 + idx / 8u;
            let part = u * 8u + idx % 8u;
            let src = p.x_offset + min(t, p.n_tokens - 1u) * c4 + min(part, c4 - 1u);
            xt[idx] = vec4<f16>(select(vec4<f32>(0.0), x[src], t < p.n_tokens && part < c4));
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 8u; kk++) {
            let b0 = xt[(tg * 4u) * 8u + kk];
            let b1 = xt[(tg * 4u + 1u) * 8u + kk];
            let b2 = xt[(tg * 4u + 2u) * 8u + kk];
            let b3 = xt[(tg * 4u + 3u) * 8u + kk];
            for (var i = 0u; i < 4u; i++) {
                let a = wt[(rg * 4u + i) * 8u + kk];
                acc[i] += vec4<f32>(vec4<f16>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3)));
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + rg * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let t = t0 + tg * 4u + j;
            if (row < p.rows && t < p.n_tokens) {
                store_out(t, row, acc[i][j]);
            }
        }
    }
}
