//! The coop GEMM bodies on lavapipe, which lacks cooperative matrices: each kernel's WGSL
//! with its cooperative-matrix operations emulated (coop_emu/mod.rs), run against the f64
//! reference. This checks everything but the tensor-core instructions themselves: tiling,
//! K chunks and slices, K splits (grid z) with `gemm_splitk_reduce`, staging, barriers,
//! bounds and the partial-sum reduction. The same kernels pass `coop_parity` on an H200's
//! tensor cores.

mod coop_emu;
mod testkit;

use coop_emu::{compile, upload_params, Emulated};
use marlin_core::formats::trellis::decode_q;
use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::coop_chunk_spec;
use marlin_gpu::wgpu;
use marlin_gpu::{
    read_f32, record_gemm_splitk_reduce, upload_f32, GpuContext, GpuWeight, Span, SplitkReduceIo,
    StepEncoder, Variant,
};
use testkit::{
    assert_sentinels, guarded, nmse, random_trellis, random_vec, random_weight, rng, GUARD,
};

/// (format, rows, cols, n_tokens).
type Shape = (QuantFormat, usize, usize, usize);

/// Run `k` on `w` over a grid of `splits` in z, with matmul params `params`, into `out`.
fn run_on(
    ctx: &GpuContext,
    k: &Emulated,
    w: &GpuWeight,
    (x, out): (&wgpu::Buffer, &wgpu::Buffer),
    params: [u32; 8],
    splits: u32,
) {
    let (rows, n) = (params[0] as usize, params[2] as usize);
    let pb = upload_params(ctx, &params);
    let gx = rows.div_ceil(k.tile.0 as usize) as u32;
    let gy = n.div_ceil(k.tile.1 as usize) as u32;
    coop_emu::dispatch(
        ctx,
        &k.pipe,
        &[&pb, &w.chunks[0].buffer, x, out],
        [gx, gy, splits],
    );
}

/// `n` runs of `rows` floats, `stride` apart from float `GUARD + lead` of `buf`, with every
/// other float of the guarded buffer still a sentinel; the runs must all be written.
fn read_strided(
    ctx: &GpuContext,
    buf: &wgpu::Buffer,
    (n, rows, stride, lead): (usize, usize, usize, usize),
    what: &str,
) -> Vec<f32> {
    let len = lead + (n - 1) * stride + rows;
    let all = read_f32(ctx, buf, 0, len + 2 * GUARD).expect("read");
    let mut data = vec![false; all.len()];
    let mut got = Vec::with_capacity(n * rows);
    for t in 0..n {
        let base = GUARD + lead + t * stride;
        got.extend_from_slice(&all[base..base + rows]);
        data[base..base + rows].fill(true);
    }
    assert_sentinels(&all, (0..all.len()).filter(|&i| !data[i]), what);
    let bad: Vec<(usize, usize)> = (0..got.len())
        .filter(|&i| !got[i].is_finite())
        .map(|i| (i / rows, i % rows))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} unwritten (run, row), first {:?}",
        bad.len(),
        &bad[..bad.len().min(8)]
    );
    got
}

/// Run kernel `k` on a random weight of shape `c` in `splits` K splits and compare with
/// the reference. One split writes the output directly (tokens `rows + 3` apart); more
/// write guarded partials (`[splits][n][rows]`) that `gemm_splitk_reduce` sums into an
/// output at row offset 2, tokens `rows + 5` apart.
fn run(ctx: &GpuContext, k: &Emulated, c: Shape, splits: usize) {
    let (format, rows, cols, n) = c;
    let what = format!(
        "{} emulated tile {:?} [{rows}x{cols}] n={n} splits={splits}",
        k.name, k.tile
    );
    let seed = (rows * 31 + cols * 3 + n) as u64;
    let t = random_weight(format, rows, cols, seed);
    let x = random_vec(&mut rng(seed ^ 0x5EED), n * cols);
    let want = reference::matmul(&t.to_f32().expect("dequantize"), &x, rows, cols, n);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    assert_eq!(w.chunks.len(), 1, "{what}: one chunk");
    let meta = w.chunks[0].meta_offset_words;
    let xb = upload_f32(ctx, &x).expect("x");
    let (r, c, nt, g) = (rows as u32, cols as u32, n as u32, GUARD as u32);
    let t0 = std::time::Instant::now();
    let got = if splits == 1 {
        let stride = rows + 3;
        let ob = upload_f32(ctx, &guarded((n - 1) * stride + rows)).expect("out");
        let params = [r, c, nt, 0, stride as u32, meta, 0, g];
        run_on(ctx, k, &w, (&xb, &ob), params, 1);
        read_strided(ctx, &ob, (n, rows, stride, 0), &what)
    } else {
        let pb = upload_f32(ctx, &guarded(splits * n * rows)).expect("partials");
        let params = [r, c, nt, 0, r, meta, 0, g];
        run_on(ctx, k, &w, (&xb, &pb), params, splits as u32);
        let parts = read_strided(ctx, &pb, (splits * n, rows, rows, 0), &what);
        let (stride, row_offset) = (rows + 5, 2);
        let ob = upload_f32(ctx, &guarded((n - 1) * stride + row_offset + rows)).expect("out");
        let mut enc = StepEncoder::new(ctx, "splitk-reduce");
        let io = SplitkReduceIo {
            partials: Span::new(&pb, GUARD),
            out: Span::new(&ob, GUARD),
            out_stride: stride,
            row_offset,
            rows,
            n_tokens: n,
            splits,
        };
        record_gemm_splitk_reduce(&mut enc, &io).expect("reduce");
        enc.submit().expect("submit");
        let got = read_strided(ctx, &ob, (n, rows, stride, row_offset), &what);
        assert_eq!(
            got,
            sum_splits(&parts, splits),
            "{what}: reduce of the partials"
        );
        got
    };
    let e = nmse(&got, &want);
    eprintln!("{what}: nmse {e:e} ({:?})", t0.elapsed());
    // f16 weights and activations, f32 sums: as the F16 / Coop rows of the NMSE table.
    assert!(e <= 2e-6, "{what}: NMSE {e:e}");
}

/// `[splits][len / splits]` summed over splits, in split order (as the reduce kernel).
fn sum_splits(parts: &[f32], splits: usize) -> Vec<f32> {
    let len = parts.len() / splits;
    (0..len)
        .map(|i| (0..splits).fold(0.0f32, |s, z| s + parts[z * len + i]))
        .collect()
}

fn ctx_f16() -> Option<&'static GpuContext> {
    let ctx = testkit::ctx()?;
    if !ctx.features.shader_f16 {
        eprintln!("skipped: the adapter has no SHADER_F16");
        return None;
    }
    Some(ctx)
}

const TILES: [Variant; 4] = [
    Variant::CoopT16,
    Variant::CoopT32,
    Variant::Coop,
    Variant::CoopT128,
];

/// The chunked body, each token tile and both weight layouts, against edge shapes: rows
/// past the tile, whole and partial chunks, token counts below, at and past the tile.
#[test]
fn chunked_coop_body_matches_emulated() {
    let Some(ctx) = ctx_f16() else { return };
    let fp4 = QuantFormat::Fp4(marlin_core::Group::G32);
    let cases = [
        (QuantFormat::Q4_0, 37, 160, 5),
        (QuantFormat::Q4_0, 131, 256, 17),
        (QuantFormat::Q4_K, 70, 512, 33),
        (QuantFormat::Q6_K, 33, 256, 1),
        (QuantFormat::F16, 9, 100, 3),
        (QuantFormat::Q8_0, 40, 96, 100),
        (fp4, 20, 96, 64),
    ];
    // The K-major layout only changes the weight staging and A loads: three of the cases.
    for (kmajor, cases) in [(false, &cases[..]), (true, &cases[1..4])] {
        for variant in TILES {
            for &c in cases {
                let s = coop_chunk_spec(c.0, variant, kmajor).expect("coop spec");
                run(ctx, &compile(ctx, &s), c, 1);
            }
        }
    }
}

/// Trellis tiles staged by `coop_stage_trellis.wgsl` (2, 3 and 4 bits, every codebook,
/// both weight layouts, every token tile): the kernel multiplies Q (the launcher runs the
/// sides), checked against core's `decode_q` times the f64 reference; rows past the tile,
/// an odd tile count (a last unit of one tile), tokens past a tile.
#[test]
fn trellis_staging_matches_emulated() {
    let Some(ctx) = ctx_f16() else { return };
    let cases = [
        ("trellis2", 48, 256, 5),
        ("trellis3", 144, 208, 17),
        ("trellis4_mul1", 32, 96, 33),
        ("trellis3_mcg", 16, 512, 3),
    ];
    // The K-major layout only changes the staging's stores: one tile, two of the cases.
    let runs = [
        (false, &TILES[..], &cases[..]),
        (true, &TILES[2..3], &cases[1..3]),
    ];
    for (kmajor, tiles, cases) in runs {
        for &variant in tiles {
            for &(name, rows, cols, n) in cases {
                let format = QuantFormat::from_name(name).expect("format");
                let QuantFormat::Trellis(tf) = format else {
                    unreachable!("{name} is trellis")
                };
                let s = coop_chunk_spec(format, variant, kmajor).expect("coop spec");
                let k = compile(ctx, &s);
                let t = random_trellis(format, rows, cols, (rows + cols) as u64);
                let q = decode_q(tf, t.bytes(), rows, cols).expect("decode");
                let x = random_vec(&mut rng(n as u64), n * cols);
                let want = reference::matmul(&q, &x, rows, cols, n);
                let w = GpuWeight::upload(ctx, &t).expect("upload");
                let xb = upload_f32(ctx, &x).expect("x");
                let ob = upload_f32(ctx, &guarded(n * rows)).expect("out");
                let (r, c, g) = (rows as u32, cols as u32, GUARD as u32);
                let meta = w.chunks[0].meta_offset_words;
                run_on(
                    ctx,
                    &k,
                    &w,
                    (&xb, &ob),
                    [r, c, n as u32, 0, r, meta, 0, g],
                    1,
                );
                let what = format!("{} emulated {variant:?} kmajor {kmajor} n={n}", k.name);
                let e = nmse(&read_strided(ctx, &ob, (n, rows, rows, 0), &what), &want);
                eprintln!("{what}: nmse {e:e}");
                assert!(e <= 2e-6, "{what}: NMSE {e:e}");
            }
        }
    }
}

/// Split K (grid z) with the reduce: every tile, token counts 1 .. 64, rows past the tile,
/// several chunks per split, uneven splits, a split with no chunk (5 splits of 4 chunks:
/// it writes zeros), and a partial last chunk.
#[test]
fn chunked_coop_body_splitk_matches_emulated() {
    let Some(ctx) = ctx_f16() else { return };
    // Q4_0 37 x 1024: 4, 8 and 16 chunks for the 16-, 32- and 64-token tiles.
    let q40 = [(1, 2), (5, 3), (17, 2), (33, 5), (64, 4)];
    for variant in TILES {
        let s = coop_chunk_spec(QuantFormat::Q4_0, variant, false).expect("coop spec");
        let k = compile(ctx, &s);
        for (n, splits) in q40 {
            run(ctx, &k, (QuantFormat::Q4_0, 37, 1024, n), splits);
        }
        for (format, rows, cols, n, splits) in [
            // 16 units: 2 .. 8 chunks.
            (QuantFormat::Q4_K, 70, 512, 33, 2),
            // 4 units, the last partial: 1 or 2 chunks, so one split or more is empty.
            (QuantFormat::F16, 9, 100, 3, 3),
        ] {
            let s = coop_chunk_spec(format, variant, false).expect("coop spec");
            run(ctx, &compile(ctx, &s), (format, rows, cols, n), splits);
        }
    }
    // The K-major weight tile splits the same way.
    let s = coop_chunk_spec(QuantFormat::Q4_0, Variant::CoopT32, true).expect("coop spec");
    run(ctx, &compile(ctx, &s), (QuantFormat::Q4_0, 37, 1024, 17), 3);
}

/// The reduce alone: splits summed in order into a strided, offset output between guards,
/// bit-exact with the same sum on the CPU; bad shapes are errors, not panics.
#[test]
fn gemm_splitk_reduce_sums_partials_in_order() {
    let Some(ctx) = testkit::ctx() else { return };
    for (rows, n, splits) in [(70, 1, 1), (70, 3, 2), (5, 2, 5), (130, 4, 16)] {
        let what = format!("gemm_splitk_reduce rows {rows} n {n} splits {splits}");
        let parts = random_vec(&mut rng((rows * n + splits) as u64), splits * n * rows);
        let mut held = vec![9.0f32; 3];
        held.extend_from_slice(&parts);
        let pb = upload_f32(ctx, &held).expect("partials");
        let (stride, row_offset) = (rows + 7, 4);
        let ob = upload_f32(ctx, &guarded((n - 1) * stride + row_offset + rows)).expect("out");
        let io = SplitkReduceIo {
            partials: Span::new(&pb, 3),
            out: Span::new(&ob, GUARD),
            out_stride: stride,
            row_offset,
            rows,
            n_tokens: n,
            splits,
        };
        let mut enc = StepEncoder::new(ctx, "splitk-reduce");
        record_gemm_splitk_reduce(&mut enc, &io).expect("reduce");
        enc.submit().expect("submit");
        let got = read_strided(ctx, &ob, (n, rows, stride, row_offset), &what);
        assert_eq!(got, sum_splits(&parts, splits), "{what}");
    }
    let pb = upload_f32(ctx, &[0.0; 64]).expect("partials");
    let ob = upload_f32(ctx, &[0.0; 64]).expect("out");
    let ok = SplitkReduceIo {
        partials: Span::whole(&pb),
        out: Span::whole(&ob),
        out_stride: 8,
        row_offset: 0,
        rows: 8,
        n_tokens: 4,
        splits: 2,
    };
    let mut enc = StepEncoder::new(ctx, "splitk-reduce-bad");
    record_gemm_splitk_reduce(&mut enc, &ok).expect("fits exactly");
    for bad in [
        SplitkReduceIo { splits: 3, ..ok },
        SplitkReduceIo { splits: 0, ..ok },
        SplitkReduceIo {
            row_offset: 1,
            ..ok
        },
        SplitkReduceIo {
            n_tokens: 9,
            splits: 1,
            ..ok
        },
        SplitkReduceIo { rows: 0, ..ok },
    ] {
        let e = record_gemm_splitk_reduce(&mut enc, &bad).expect_err("bad shape");
        assert!(e.to_string().contains("gemm_splitk_reduce"), "{e}");
    }
    assert_eq!(enc.dispatch_count(), 1);
}
