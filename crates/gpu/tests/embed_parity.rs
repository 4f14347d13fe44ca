//! Row lookups against the reference: `embed` per weight format (rows of a chunked table
//! times a scale) and `gather_rows` (f32 rows of a buffer already on the GPU, as the LM head
//! gathers a step's logits rows), with guard regions around every output. Lavapipe
//! (testkit).

mod testkit;

use marlin_gpu::{
    record_embed, record_gather_rows, upload_f32, GpuWeight, Span, StepEncoder, MATMUL_FORMATS,
};
use testkit::{out_buf, random_vec, random_weight, read_guarded, rng, u32_buf, GUARD};

#[test]
fn embed_matches_dequantized_rows_for_every_format() {
    let Some(ctx) = testkit::ctx() else { return };
    let (rows, cols) = (37, 256);
    let ids = [5u32, 0, 36, 5, 20];
    // Trellis weights have no embedding kernel (no row access; see trellis_parity.rs).
    for &format in MATMUL_FORMATS.iter().filter(|f| !f.is_trellis()) {
        let t = random_weight(format, rows, cols, 3);
        let dq = t.to_f32().expect("dq");
        // Chunks of ~10 rows, so ids land in different chunks.
        let limit = (format.row_bytes(cols).expect("row") * 10) as u64;
        let w = GpuWeight::upload_chunked(ctx, &t, limit).expect("upload");
        assert!(w.chunks.len() >= 3, "{format}");
        let mut idh = vec![99u32; 4];
        idh.extend_from_slice(&ids);
        let ib = u32_buf(ctx, &idh);
        let ob = out_buf(ctx, ids.len() * cols);
        let mut enc = StepEncoder::new(ctx, "t");
        record_embed(
            &mut enc,
            &w,
            Span::new(&ib, 4),
            Span::new(&ob, GUARD),
            ids.len(),
            2.0,
        )
        .expect("record");
        enc.submit().expect("submit");
        let got = read_guarded(ctx, &ob, ids.len() * cols, &format!("embed_{format}"));
        let want: Vec<f32> = ids
            .iter()
            .flat_map(|&i| dq[i as usize * cols..][..cols].iter().map(|v| v * 2.0))
            .collect();
        assert_eq!(got, want, "embed_{format}");
    }
}

#[test]
fn gather_rows_copies_rows_bit_for_bit() {
    let Some(ctx) = testkit::ctx() else { return };
    for (src_rows, cols) in [(9, 4), (40, 260), (3, 2048)] {
        let mut x = random_vec(&mut rng(src_rows as u64 + cols as u64), src_rows * cols);
        // NaN payloads, infinities and signed zeros pass unchanged.
        x[0] = f32::from_bits(0x7FC0_1234);
        x[1] = f32::NEG_INFINITY;
        x[2] = -0.0;
        let xb = upload_f32(ctx, &x).expect("x");
        let ids: Vec<u32> = [src_rows - 1, 0, src_rows / 2, 0]
            .iter()
            .map(|&r| r as u32)
            .collect();
        // Ids from word 5: any offset works.
        let mut idh = vec![7u32; 5];
        idh.extend_from_slice(&ids);
        let ib = u32_buf(ctx, &idh);
        let ob = out_buf(ctx, ids.len() * cols);
        let mut enc = StepEncoder::new(ctx, "t");
        record_gather_rows(
            &mut enc,
            Span::whole(&xb),
            src_rows,
            cols,
            Span::new(&ib, 5),
            Span::new(&ob, GUARD),
            ids.len(),
        )
        .expect("record");
        enc.submit().expect("submit");
        let got = read_guarded(ctx, &ob, ids.len() * cols, "gather_rows");
        let want: Vec<u32> = ids
            .iter()
            .flat_map(|&i| x[i as usize * cols..][..cols].iter().map(|v| v.to_bits()))
            .collect();
        let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "[{src_rows}x{cols}]");
    }
}

#[test]
fn gather_rows_rejects_bad_shapes() {
    let Some(ctx) = testkit::ctx() else { return };
    let xb = upload_f32(ctx, &[0.0; 64]).expect("x");
    let ib = u32_buf(ctx, &[0; 8]);
    let ob = out_buf(ctx, 64);
    let mut enc = StepEncoder::new(ctx, "t");
    let (x, o) = (Span::whole(&xb), Span::whole(&ob));
    // Rows past the source, a source not from offset 0, a width not a multiple of 4, no
    // rows.
    assert!(record_gather_rows(&mut enc, x, 17, 4, Span::whole(&ib), o, 2).is_err());
    assert!(record_gather_rows(&mut enc, Span::new(&xb, 4), 4, 4, Span::whole(&ib), o, 2).is_err());
    assert!(record_gather_rows(&mut enc, x, 4, 6, Span::whole(&ib), o, 2).is_err());
    assert!(record_gather_rows(&mut enc, x, 4, 4, Span::whole(&ib), o, 0).is_err());
}
