// Embedding lookup body, shared by every embed_<format> kernel (matmul_io bindings: w is
// the table chunk, x holds the token ids as u32 bits, out the rows). Workgroup t handles
// token t: if its id falls in this chunk (rows row_offset ..), the WG threads decode the
// row's units with the format's load_unit and store them times the scale. out_stride
// carries the f32 bits of the scale (rows are cols floats apart).
const WG: u32 = 64u;

fn embed_run(lid: u32, t: u32) {
    if (t >= p.n_tokens) {
        return;
    }
    let e = p.x_offset * 4u + t;
    let tok = bitcast<u32>(x[e >> 2u][e & 3u]);
    if (tok < p.row_offset || tok - p.row_offset >= p.rows) {
        return;
    }
    let row = tok - p.row_offset;
    let scale = bitcast<f32>(p.out_stride);
    let ob = p.out_offset + t * p.cols;
    for (var u = lid; u < units_per_row(); u += WG) {
        let r = load_unit(row, u);
        for (var i = 0u; i < 8u; i++) {
            let c = u * UNIT + i * 4u;
            if (c < p.cols) {
                for (var k = 0u; k < 4u; k++) {
                    out[ob + c + k] = r[i][k] * scale;
                }
            }
        }
    }
}
