//! `moe_gemv_silu_combine` (the down experts' GEMV with `silu(gate) · up` folded into its
//! input and `moe_combine` into its output) against the reference and, bit for bit, against
//! `moe_gemv_silu` then `moe_combine` on the same device. Rows of a partial row block, a
//! guard past the output, two dispatches in one step (the arrival counters reset), and the
//! launcher's refusals.

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::{
    moe_combine_folds, read_f32, record_moe_combine, record_moe_gemv_fused, upload_f32, zeroed_f32,
    GpuContext, GpuWeight, MoeCombineOut, MoeFuse, MoeGemvIo, Op, PooledBuffer, StepEncoder,
};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

const EXPERTS: usize = 5;
/// Rows per expert: one whole row block and part of another.
const ROWS: usize = 24;
const TOKENS: usize = 3;
const TOP_K: usize = 2;
/// Expert of each slot (token t's slots are 2t, 2t + 1; token 1 picks expert 1 twice).
const IDS: [u32; 6] = [4, 1, 1, 1, 0, 3];
const GUARD: f32 = 12345.0;

fn silu(g: f32) -> f32 {
    g / (1.0 + (-g).exp())
}

struct Case {
    w: GpuWeight,
    gu: PooledBuffer,
    ids: PooledBuffer,
    wts: PooledBuffer,
    /// The reference combine (before the accumulated start values).
    want: Vec<f32>,
    start: Vec<f32>,
}

fn case(ctx: &GpuContext, format: QuantFormat, cols: usize) -> Case {
    let t = random_weight(format, EXPERTS * ROWS, cols, cols as u64 + 7);
    let dense = t.to_f32().expect("dequantize");
    let mut r = rng(cols as u64 + 11);
    let gu = random_vec(&mut r, IDS.len() * 2 * cols);
    let wts = random_vec(&mut r, IDS.len());
    let start = random_vec(&mut r, TOKENS * ROWS);
    let mut want = vec![0.0f32; TOKENS * ROWS];
    for (s, &e) in IDS.iter().enumerate() {
        let (g, u) = gu[s * 2 * cols..(s + 1) * 2 * cols].split_at(cols);
        let x: Vec<f32> = g.iter().zip(u).map(|(&g, &u)| silu(g) * u).collect();
        let rows = &dense[e as usize * ROWS * cols..(e as usize + 1) * ROWS * cols];
        let y = reference::matmul(rows, &x, ROWS, cols, 1);
        let tok = s / TOP_K;
        for (o, v) in want[tok * ROWS..(tok + 1) * ROWS].iter_mut().zip(y) {
            *o += wts[s] * v;
        }
    }
    let ids: Vec<f32> = IDS.iter().map(|&i| f32::from_bits(i)).collect();
    Case {
        w: GpuWeight::upload(ctx, &t).expect("upload"),
        gu: upload_f32(ctx, &gu).unwrap(),
        ids: upload_f32(ctx, &ids).unwrap(),
        wts: upload_f32(ctx, &wts).unwrap(),
        want,
        start,
    }
}

fn io<'a>(c: &'a Case, y: &'a marlin_gpu::wgpu::Buffer) -> MoeGemvIo<'a> {
    MoeGemvIo {
        x: &c.gu,
        x_per_slot: 1,
        ids: &c.ids,
        out: y,
        slots: IDS.len(),
        rows_per_expert: ROWS,
    }
}

/// The start values, then a guard value.
fn with_guard(v: &[f32]) -> Vec<f32> {
    let mut g = v.to_vec();
    g.push(GUARD);
    g
}

#[test]
fn moe_gemv_silu_combine_matches_silu_then_combine() {
    let Some(ctx) = testkit::ctx() else { return };
    let n = TOKENS * ROWS;
    // GLM-4.7-Flash's down experts: 1536 columns, one x tile of 8-bit activations.
    let glm = [QuantFormat::Q4_0, QuantFormat::Q4_K].map(|f| (1536, f));
    for (cols, format) in testkit::moe_cases([256, 4352]).chain(glm) {
        let c = case(ctx, format, cols);
        if !moe_combine_folds(ctx, &c.w) {
            eprintln!("{format}: moe_gemv_silu_combine does not run here");
            continue;
        }
        let y = zeroed_f32(ctx, IDS.len() * ROWS).unwrap();
        // Fused: accumulated onto the start values, then a second dispatch overwriting.
        let acc = upload_f32(ctx, &with_guard(&c.start)).unwrap();
        let over = upload_f32(ctx, &with_guard(&c.start)).unwrap();
        // Unfused, the same two ways.
        let (y2, acc2) = (
            zeroed_f32(ctx, IDS.len() * ROWS).unwrap(),
            upload_f32(ctx, &c.start).unwrap(),
        );
        let over2 = upload_f32(ctx, &c.start).unwrap();
        let mut enc = StepEncoder::new(ctx, "moe_gemv_silu_combine");
        for (out, accumulate) in [(&acc, true), (&over, false)] {
            let fold = MoeCombineOut {
                wts: &c.wts,
                out,
                top_k: TOP_K,
                accumulate,
            };
            record_moe_gemv_fused(&mut enc, &c.w, &io(&c, &y), MoeFuse::SiluCombine(fold))
                .expect("record");
        }
        record_moe_gemv_fused(&mut enc, &c.w, &io(&c, &y2), MoeFuse::Silu).unwrap();
        for (out, accumulate) in [(&acc2, true), (&over2, false)] {
            record_moe_combine(&mut enc, &y2, &c.wts, out, TOKENS, ROWS, TOP_K, accumulate)
                .unwrap();
        }
        enc.submit().unwrap();
        let read = |b| read_f32(ctx, b, 0, n + 1).unwrap();
        let (got_acc, got_over) = (read(&acc), read(&over));
        for got in [&got_acc, &got_over] {
            assert_eq!(got[n], GUARD, "{format} cols {cols}: wrote past the output");
        }
        let want_acc: Vec<f32> = c.want.iter().zip(&c.start).map(|(w, s)| w + s).collect();
        let limit = nmse_threshold(Op::Gemv, format, testkit::moe_gemv_variant(format, cols));
        for (got, want) in [(&got_acc, &want_acc), (&got_over, &c.want)] {
            let e = nmse(&got[..n], want);
            eprintln!("{format} cols {cols}: nmse {e:e}");
            assert!(e < limit, "{format} cols {cols}: {e:e}");
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (unf_acc, unf_over) = (read_f32(ctx, &acc2, 0, n).unwrap(), read(&over2));
        assert_eq!(bits(&got_acc[..n]), bits(&unf_acc), "{format}: accumulated");
        assert_eq!(
            bits(&got_over[..n]),
            bits(&unf_over[..n]),
            "{format}: overwritten"
        );
    }
}

#[test]
fn moe_gemv_silu_combine_refuses_bad_shapes() {
    let Some(ctx) = testkit::ctx() else { return };
    let c = case(ctx, QuantFormat::Q4_0, 256);
    let y = zeroed_f32(ctx, IDS.len() * ROWS).unwrap();
    let out = zeroed_f32(ctx, TOKENS * ROWS).unwrap();
    // Pooled buffers round their sizes up: a plain one is exactly this short.
    let short = ctx
        .device
        .create_buffer(&marlin_gpu::wgpu::BufferDescriptor {
            label: None,
            size: ((TOKENS * ROWS - 1) * 4) as u64,
            usage: marlin_gpu::wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
    let mut enc = StepEncoder::new(ctx, "moe_gemv_silu_combine");
    let fold = |out, top_k| {
        MoeFuse::SiluCombine(MoeCombineOut {
            wts: &c.wts,
            out,
            top_k,
            accumulate: false,
        })
    };
    // Slots not a whole number of tokens, no slots per token, a short output.
    for (i, f) in [fold(&out, 4), fold(&out, 0), fold(&short, TOP_K)]
        .into_iter()
        .enumerate()
    {
        let r = record_moe_gemv_fused(&mut enc, &c.w, &io(&c, &y), f);
        assert!(r.is_err(), "case {i} accepted");
    }
}
