//! The grouped MoE GEMM (`moe_gemm`): `moe_sort` groups the slots in chunks of the token
//! tile, the x rows are gathered, the kernel multiplies each chunk with its expert's rows,
//! and the outputs gathered back must equal each slot's expert matmul (f64 reference on
//! the dequantized weights; f16 operands). On lavapipe the kernel runs with its
//! cooperative-matrix operations emulated (coop_emu), every token tile; on an adapter with
//! cooperative matrices it runs on the tensor cores through its launcher
//! (`record_moe_grouped_rows`), at model-like shapes. Cases: experts with no slot and with
//! several chunks, unused chunks, several row tiles per expert, a partial K chunk.

mod coop_emu;
mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::moe_gemm_spec;
use marlin_gpu::wgpu::Buffer;
use marlin_gpu::{
    list_adapters, moe_gemm_runs, read_f32, record_gather_rows, record_moe_grouped_rows,
    record_moe_sort, upload_f32, zeroed_f32, DeviceSelector, GpuContext, GpuWeight, MoeGroups,
    Span, StepEncoder, Variant,
};
use testkit::{nmse, random_vec, random_weight, rng};

/// (format, rows per expert, cols, experts, tokens, slots per token).
type Case = (QuantFormat, usize, usize, usize, usize, usize);

/// Run `case` with `variant`'s chunks, the kernel recorded by `kernel` (weight, groups,
/// grouped x, grouped out), and compare with each slot's expert matmul.
fn check(
    ctx: &GpuContext,
    variant: Variant,
    (format, er, cols, experts, n, k): Case,
    kernel: impl Fn(&GpuWeight, &MoeGroups, &Buffer, &Buffer),
) {
    let what = format!("moe_gemm {format} {variant:?} er={er} cols={cols} n={n} k={k}");
    let slots = n * k;
    // Expert 1 takes most slots (several chunks), the last expert none.
    let ids: Vec<u32> = (0..slots)
        .map(|s| match s % 3 {
            0 => (s % (experts - 1)) as u32,
            _ => 1,
        })
        .collect();
    let t = random_weight(format, experts * er, cols, (er * 7 + cols) as u64);
    let dense = t.to_f32().expect("dequantize");
    let x = random_vec(&mut rng(cols as u64 + 5), n * cols);
    let mut want = Vec::with_capacity(slots * er);
    for (s, &e) in ids.iter().enumerate() {
        let rows = &dense[e as usize * er * cols..(e as usize + 1) * er * cols];
        let xs = &x[(s / k) * cols..(s / k + 1) * cols];
        want.extend(reference::matmul(rows, xs, er, cols, 1));
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
    let mut enc = StepEncoder::new(ctx, "moe_sort");
    let g = record_moe_sort(&mut enc, &ib, (slots, experts, k), Some(variant)).expect("sort");
    let xrows = Span::new(&g.table, g.xrow_off);
    let (xs, xd) = (Span::whole(&xb), Span::whole(&xg));
    record_gather_rows(&mut enc, xs, n, cols, xrows, xd, slots).expect("gather x");
    enc.submit().unwrap();
    kernel(&w, &g, &xg, &yg);
    let mut enc = StepEncoder::new(ctx, "gather back");
    let places = Span::new(&g.table, g.inv_off);
    let (ys, yd) = (Span::whole(&yg), Span::whole(&y));
    record_gather_rows(&mut enc, ys, slots, er, places, yd, slots).expect("gather y");
    enc.submit().unwrap();
    let got = read_f32(ctx, &y, 0, want.len()).unwrap();
    assert!(got.iter().all(|v| v.is_finite()), "{what}: not finite");
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
    // (format, cols, experts, tokens, slots per token); rows per expert: two row tiles.
    let cases = [
        (QuantFormat::Q4_0, 96, 5, 70, 2),
        (QuantFormat::F16, 200, 4, 90, 1),
        (QuantFormat::Q4_K, 256, 3, 45, 3),
        (QuantFormat::Q8_0, 160, 6, 120, 2),
    ];
    // The launcher's tiles (64 and 128 tokens, 128 rows), then the small ones on one case.
    let tiles = [
        (Variant::Coop, &cases[..]),
        (Variant::CoopT128, &cases[..]),
        (Variant::CoopT32, &cases[..1]),
        (Variant::CoopT16, &cases[..1]),
    ];
    for (variant, cases) in tiles {
        let spec = moe_gemm_spec(QuantFormat::Q4_0, variant, false).expect("spec");
        let tm = spec.rows_per_group as usize;
        for &(format, cols, experts, n, k) in cases {
            let spec = moe_gemm_spec(format, variant, false).expect("spec");
            let kernel = coop_emu::compile(ctx, &spec);
            let er = 2 * tm;
            check(
                ctx,
                variant,
                (format, er, cols, experts, n, k),
                |w, g, x, y| {
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
                    let grid = [(er / tm) as u32, g.max_chunks as u32, 1];
                    let bufs = [&pb, &w.chunks[0].buffer, x, y, &g.table];
                    coop_emu::dispatch(ctx, &kernel.pipe, &bufs, grid);
                },
            );
        }
    }
}

/// On the tensor cores, through the launcher: GLM-4.7-Flash-like rows (2,048 columns,
/// experts averaging 50 to 150 slots), both launcher tiles. Skipped without an adapter
/// that runs the coop GEMM.
#[test]
fn moe_gemm_matches_each_slots_expert_on_tensor_cores() {
    let Some(ctx) = list_adapters()
        .into_iter()
        .find(|a| a.coop_gemm())
        .and_then(|a| {
            GpuContext::new(DeviceSelector::GpuIndex(a.index))
                .ok()
                .flatten()
        })
    else {
        eprintln!("moe_gemm: SKIPPED (no adapter with cooperative matrices)");
        return;
    };
    let cases = [
        (Variant::Coop, (QuantFormat::Q4_0, 384, 2048, 8, 100, 4)),
        (Variant::Coop, (QuantFormat::Q4_K, 256, 1536, 6, 150, 2)),
        (Variant::CoopT128, (QuantFormat::Q8_0, 256, 2048, 4, 300, 2)),
        (Variant::CoopT128, (QuantFormat::Q4_0, 128, 544, 5, 400, 2)),
    ];
    for (variant, case) in cases {
        check(&ctx, variant, case, |w, g, x, y| {
            assert!(moe_gemm_runs(&ctx, w, case.1, variant), "{variant:?} runs");
            let mut enc = StepEncoder::new(&ctx, "moe_gemm");
            record_moe_grouped_rows(&mut enc, w, case.1, g, x, y).expect("record");
            enc.submit().expect("submit");
        });
    }
}
