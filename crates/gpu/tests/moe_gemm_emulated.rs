//! The grouped MoE GEMM (`moe_gemm`) on lavapipe with its cooperative-matrix operations
//! emulated (coop_emu): `moe_sort` groups the slots in chunks of the token tile, the rows
//! are gathered, the emulated kernel multiplies each chunk with its expert's rows, and the
//! outputs gathered back must equal each slot's expert matmul (f64 reference; f16 operands).
//! Experts with no slot, with several chunks, a partial row tile and a partial K chunk.

mod coop_emu;
mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::moe_gemm_spec;
use marlin_gpu::{
    moe_gemm_chunk, read_f32, record_gather_rows, record_moe_sort_chunked, upload_f32, zeroed_f32,
    GpuWeight, Span, StepEncoder, Variant,
};
use testkit::{nmse, random_vec, random_weight, rng};

/// (format, rows per expert, cols, experts, tokens, slots per token).
type Case = (QuantFormat, usize, usize, usize, usize, usize);

fn run(variant: Variant, (format, er, cols, experts, n, k): Case) {
    let ctx = testkit::ctx().expect("ctx");
    let what = format!("moe_gemm {format} {variant:?} er={er} cols={cols} n={n} k={k}");
    let slots = n * k;
    // Expert 1 takes most slots (several chunks), the last expert none.
    let ids: Vec<u32> = (0..slots)
        .map(|s| {
            if s % 3 == 0 {
                (s % (experts - 1)) as u32
            } else {
                1
            }
        })
        .collect();
    let t = random_weight(format, experts * er, cols, (er * 7 + cols) as u64);
    let dense = t.to_f32().expect("dequantize");
    let x = random_vec(&mut rng(cols as u64 + 5), n * cols);
    let mut want = Vec::with_capacity(slots * er);
    for (s, &e) in ids.iter().enumerate() {
        let rows = &dense[e as usize * er * cols..(e as usize + 1) * er * cols];
        want.extend(reference::matmul(
            rows,
            &x[(s / k) * cols..(s / k + 1) * cols],
            er,
            cols,
            1,
        ));
    }
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let words: Vec<f32> = ids.iter().map(|&i| f32::from_bits(i)).collect();
    let (xb, ib) = (
        upload_f32(ctx, &x).unwrap(),
        upload_f32(ctx, &words).unwrap(),
    );
    let (xg, yg) = (
        zeroed_f32(ctx, slots * cols).unwrap(),
        zeroed_f32(ctx, slots * er).unwrap(),
    );
    let y = zeroed_f32(ctx, slots * er).unwrap();
    let chunk = moe_gemm_chunk(variant);
    let mut enc = StepEncoder::new(ctx, "moe_sort");
    let g = record_moe_sort_chunked(&mut enc, &ib, slots, experts, k, chunk).expect("sort");
    let xrows = Span::new(&g.table, g.xrow_off);
    record_gather_rows(
        &mut enc,
        Span::whole(&xb),
        n,
        cols,
        xrows,
        Span::whole(&xg),
        slots,
    )
    .expect("gather x");
    enc.submit().unwrap();
    let spec = moe_gemm_spec(format, variant, false).expect("spec");
    let kernel = coop_emu::compile(ctx, &spec);
    let params = [
        (experts * er) as u32,
        cols as u32,
        er as u32,
        0,
        er as u32,
        w.chunks[0].meta_offset_words,
        0,
        0,
    ];
    let pb = coop_emu::upload_params(ctx, &params);
    let grid = [
        er.div_ceil(spec.rows_per_group as usize) as u32,
        g.max_chunks as u32,
        1,
    ];
    let bufs = [&pb, &w.chunks[0].buffer, &xg, &yg, &g.table];
    coop_emu::dispatch(ctx, &kernel.pipe, &bufs, grid);
    let mut enc = StepEncoder::new(ctx, "gather back");
    let places = Span::new(&g.table, g.inv_off);
    record_gather_rows(
        &mut enc,
        Span::whole(&yg),
        slots,
        er,
        places,
        Span::whole(&y),
        slots,
    )
    .expect("gather y");
    enc.submit().unwrap();
    let got = read_f32(ctx, &y, 0, want.len()).unwrap();
    let e = nmse(&got, &want);
    eprintln!("{what}: nmse {e:e}");
    assert!(e < 2e-6, "{what}: nmse {e:e}");
}

#[test]
fn moe_gemm_matches_each_slots_expert_emulated() {
    let Some(ctx) = testkit::ctx() else { return };
    if !ctx.features.shader_f16 {
        eprintln!("skipped: the adapter has no SHADER_F16");
        return;
    }
    let cases: [Case; 4] = [
        (QuantFormat::Q4_0, 40, 96, 5, 21, 2),
        (QuantFormat::F16, 24, 192, 4, 30, 1),
        (QuantFormat::Q4_K, 36, 256, 3, 13, 3),
        (QuantFormat::Q8_0, 68, 160, 6, 40, 2),
    ];
    for variant in [Variant::CoopT16, Variant::CoopT32] {
        for c in cases {
            run(variant, c);
        }
    }
}
